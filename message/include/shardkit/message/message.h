// Message: a JSON object whose top-level scalar properties route it.
//
// A message is kept flat: an ordered list of top-level properties. Scalars (strings, numbers,
// booleans, null) are held as their canonical text; nested objects and arrays are data, never take
// part in matching, and are kept as their validated JSON text until a handler asks for them
// (JsonView / ParseJson in json.h). So routing a message never walks its payload, and forwarding
// one never re-encodes it.
//
// Metadata lives under "meta$" and is held decoded in Meta (id, trace, parent, deadline, hops).
// Other members of a received "meta$" object are dropped.
//
// Canonical scalar text (what routing compares, see pattern.h):
//   string -> its decoded content        "entry"  -> entry
//   number -> its JSON text, unchanged   1, 1.50  -> 1, 1.50
//   bool   -> true / false
//   null   -> null (never a routing value)
//
// A message can hold its properties shared (Share()): its copies then share one immutable list
// and cost a reference count rather than a copy of every property; a write through any of them
// first takes a private copy (a cache hands out its stored answers this way).
//
// Thread-safety: a Message is a value; distinct messages may be used from distinct threads, also
// when they share their properties.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardkit {

enum class ValueType : uint8_t { kNull, kBool, kNumber, kString, kObject, kArray };

// One top-level property value: a type and its text (canonical scalar text or raw JSON).
struct Value {
  ValueType type = ValueType::kNull;
  std::string text;

  bool is_scalar() const { return type != ValueType::kObject && type != ValueType::kArray; }
  // True for the types that route a message: string, number, bool.
  bool is_routable() const {
    return type == ValueType::kString || type == ValueType::kNumber || type == ValueType::kBool;
  }
  friend bool operator==(const Value&, const Value&) = default;
};

struct Property {
  std::string name;
  Value value;
  friend bool operator==(const Property&, const Property&) = default;
};

// Message metadata ("meta$"). Empty strings / zero mean "not set".
struct Meta {
  std::string id;        // unique per message; every reply carries the request's id
  std::string trace;     // shared by one causal chain
  std::string parent;    // id of the message that caused this one
  int64_t deadline = 0;  // absolute, ms since the Unix epoch; 0 = none
  int32_t hops = 0;      // incremented by every bus the message passes through
  // Set by the sender of a write that may be sent again (a resend, a client's retry): a store
  // applies a write with a key it has seen once and answers the copies with its first answer
  // (docs/store.md, "Idempotency keys"). Kept by forwarders that pass the message on (a shard
  // router, a cache); a child message built afresh starts without one.
  std::string idempotency_key;
  // The routes to services of this process that this causal chain passed, oldest first, so a
  // message that would take one of them again is refused as a route loop at once
  // (services/node/gate_handler.h).
  // Process-local: never on the wire (a loop across processes dies at the hop limit).
  std::vector<std::string> via;

  bool empty() const {
    return id.empty() && trace.empty() && parent.empty() && deadline == 0 && hops == 0 &&
           idempotency_key.empty();
  }
  friend bool operator==(const Meta&, const Meta&) = default;
};

class Message {
 public:
  Message() = default;
  Message(const Message&) = default;
  Message& operator=(const Message&) = default;
  Message& operator=(Message&&) noexcept = default;
  // Moves only the metadata fields that are set: a message is moved several times on its way
  // through a bus, and a move of an empty std::string still copies its terminator (a memcpy
  // call). Most messages have no parent, idempotency key or trail.
  Message(Message&& other) noexcept
      : properties_(std::move(other.properties_)), shared_(std::move(other.shared_)) {
    Meta& from = other.meta_;
    if (!from.id.empty()) meta_.id = std::move(from.id);
    if (!from.trace.empty()) meta_.trace = std::move(from.trace);
    if (!from.parent.empty()) meta_.parent = std::move(from.parent);
    meta_.deadline = from.deadline;
    meta_.hops = from.hops;
    if (!from.idempotency_key.empty()) meta_.idempotency_key = std::move(from.idempotency_key);
    if (!from.via.empty()) meta_.via = std::move(from.via);
  }

  // --- Reading ------------------------------------------------------------------------------
  // The property named `name`, or nullptr. "meta$" is never a property (see meta()).
  const Value* Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  // The string value of `name`; nullopt when absent or not a string.
  std::optional<std::string_view> GetString(std::string_view name) const;
  // The integer value of `name`; nullopt when absent, not a number, or not an integer in range.
  std::optional<int64_t> GetInt(std::string_view name) const;
  std::optional<uint64_t> GetUint(std::string_view name) const;
  std::optional<double> GetDouble(std::string_view name) const;
  // The bool value of `name`; nullopt when absent or not a bool.
  std::optional<bool> GetBool(std::string_view name) const;
  // The raw JSON text of an object or array property; nullopt when absent or not that type.
  std::optional<std::string_view> GetObjectJson(std::string_view name) const;
  std::optional<std::string_view> GetArrayJson(std::string_view name) const;

  const std::vector<Property>& properties() const { return shared_ ? *shared_ : properties_; }
  size_t size() const { return properties().size(); }
  bool empty() const { return properties().empty(); }

  // --- Writing (each replaces an existing property of the same name in place) ---------------
  Message& SetString(std::string_view name, std::string_view value);
  Message& SetInt(std::string_view name, int64_t value);
  Message& SetUint(std::string_view name, uint64_t value);
  Message& SetDouble(std::string_view name, double value);
  Message& SetBool(std::string_view name, bool value);
  Message& SetNull(std::string_view name);
  // `json` must be the valid JSON text of an object (resp. array); the caller vouches for it
  // (it came from a parser or a JSON writer). Use ParseMessage to validate untrusted text.
  Message& SetObjectJson(std::string_view name, std::string_view json);
  Message& SetObjectJson(std::string_view name,
                         std::string&& json);  // takes the text without a copy
  Message& SetObjectJson(std::string_view name, const char* json) {
    return SetObjectJson(name, std::string_view(json));
  }
  Message& SetArrayJson(std::string_view name, std::string_view json);
  Message& Set(std::string_view name, Value value);
  // Appends without checking for an existing property of that name (the codec checks first).
  void Append(std::string name, Value value) {
    Own().push_back(Property{std::move(name), std::move(value)});
  }
  void Reserve(size_t n) { Own().reserve(n); }
  // Removes `name`; returns whether it was present.
  bool Remove(std::string_view name);

  // Makes the properties immutable and shared with every later copy of this message (see above).
  void Share();
  bool shared() const { return shared_ != nullptr; }

  Meta& meta() { return meta_; }
  const Meta& meta() const { return meta_; }

  // --- Seed notation -------------------------------------------------------------------------
  // "store:load,kind:entry,id:42" for the routing properties (string, number, bool), in order.
  std::string RoutingString() const;

  friend bool operator==(const Message& a, const Message& b) {
    return a.properties() == b.properties() && a.meta_ == b.meta_;
  }

 private:
  Value* FindMutable(std::string_view name);
  // The properties, made private to this message first when they are shared.
  std::vector<Property>& Own();

  std::vector<Property> properties_;                     // empty while shared_ is set
  std::shared_ptr<const std::vector<Property>> shared_;  // set by Share()
  Meta meta_;
};

}  // namespace shardkit
