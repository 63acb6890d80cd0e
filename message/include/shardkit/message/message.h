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
// The properties live in one block (PropertyList): the list of names and values and, after it,
// their text, so parsing a message allocates once however many properties it has, and a copy,
// a move or a destruction handles one block instead of a string per name and per value. A
// property's name and text are views into that block. Nothing in it moves: properties added past
// its room go to further chunks it holds, so a view read from a message stays valid, across
// moves too, until the message dies or that property is set again or removed.
//
// A message can hold its properties shared (Share()): its copies then share one immutable block
// and cost a reference count rather than a copy; a write through any of them first takes a
// private copy (a cache hands out its stored answers this way).
//
// Thread-safety: a Message is a value; distinct messages may be used from distinct threads, also
// when they share their properties.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shardkit {

enum class ValueType : uint8_t { kNull, kBool, kNumber, kString, kObject, kArray };

// One top-level property value: a type and its text (canonical scalar text or raw JSON). In a
// message, the text is a view into the message's block; a Value handed to Set is copied in.
struct Value {
  ValueType type = ValueType::kNull;
  std::string_view text;

  bool is_scalar() const { return type != ValueType::kObject && type != ValueType::kArray; }
  // True for the types that route a message: string, number, bool.
  bool is_routable() const {
    return type == ValueType::kString || type == ValueType::kNumber || type == ValueType::kBool;
  }
  // A string's text, a bool's value; nullopt for any other type (Message's typed getters).
  std::optional<std::string_view> AsString() const {
    if (type != ValueType::kString) return std::nullopt;
    return text;
  }
  std::optional<bool> AsBool() const {
    if (type != ValueType::kBool) return std::nullopt;
    return text == "true";
  }
  friend bool operator==(const Value&, const Value&) = default;
};

struct Property {
  std::string_view name;
  Value value;
  friend bool operator==(const Property&, const Property&) = default;
};

// A message's properties and their text in one heap block: this header, `capacity` Property
// slots, then the text their views point into. Made and changed only by Message.
class alignas(8) PropertyList {
 public:
  PropertyList(const PropertyList&) = delete;
  PropertyList& operator=(const PropertyList&) = delete;

  const Property* begin() const { return slots(); }
  const Property* end() const { return slots() + count_; }
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const Property& operator[](size_t i) const { return slots()[i]; }
  friend bool operator==(const PropertyList& a, const PropertyList& b);

  // The list of a message without properties.
  static const PropertyList& Empty();

 private:
  friend class Message;
  PropertyList(uint32_t capacity, size_t text_capacity)
      : capacity_(capacity),
        slots_(reinterpret_cast<Property*>(this + 1)),
        text_(reinterpret_cast<char*>(slots_ + capacity)),
        text_capacity_(text_capacity) {}
  // Another allocation a list holds: a grown slot array or a further chunk of text.
  struct Chunk {
    Chunk* next;
  };
  static PropertyList* New(uint32_t capacity, size_t text_capacity);
  static void Free(PropertyList* list);
  // Drops a shared holder's reference; the last one frees the list.
  static void ReleaseShared(PropertyList* list);
  // A private copy with room for `capacity` properties and `text_capacity` bytes of text, its
  // text packed (text a replaced value left behind is not copied).
  PropertyList* Copy(uint32_t capacity, size_t text_capacity) const;
  // Bytes of names and texts the properties use.
  size_t LiveText() const;
  // Room for `slots` more properties and `text_bytes` more bytes of text, in new chunks when
  // the current ones are full; nothing moves, so every view stays valid.
  void Grow(uint32_t slots, size_t text_bytes);
  void* AddChunk(size_t bytes);
  Property* slots() { return slots_; }
  const Property* slots() const { return slots_; }

  std::atomic<uint32_t> refs_{1};  // messages holding it; more than one only once shared
  uint32_t count_ = 0;
  uint32_t capacity_;
  Property* slots_;  // after this header, until they outgrow it
  char* text_;       // the chunk being filled: after the slots, until the text outgrows it
  size_t text_used_ = 0;
  size_t text_capacity_;
  Chunk* chunks_ = nullptr;
  // The shared list this one was copied from when its message was first written, held (one
  // reference) until this one is freed: views read from the message before stay valid.
  PropertyList* copied_from_ = nullptr;
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

// A message's Meta with the count of its holders: the message, and the contexts its dispatches
// made (MetaRef). Taken from a per-thread pool (Message::NewMeta).
struct MetaBox {
  Meta meta;
  std::atomic<uint32_t> refs{1};
};

class MetaRef;

class Message {
 public:
  Message() = default;
  Message(const Message& other);
  Message& operator=(const Message& other);
  Message& operator=(Message&& other) noexcept;
  // A move hands over two pointers: the properties' block and the metadata's.
  Message(Message&& other) noexcept
      : list_(std::exchange(other.list_, nullptr)),
        shared_(other.shared_),
        meta_(std::exchange(other.meta_, nullptr)) {}
  ~Message() {
    Release(list_, shared_);
    if (meta_ != nullptr) ReleaseMeta(meta_);
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

  const PropertyList& properties() const { return list_ ? *list_ : PropertyList::Empty(); }
  size_t size() const { return list_ ? list_->count_ : 0; }
  bool empty() const { return size() == 0; }

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
  Message& SetArrayJson(std::string_view name, std::string_view json);
  // `value.text` may point anywhere, into this message too: it is copied into the block.
  Message& Set(std::string_view name, const Value& value);
  // Appends without checking for an existing property of that name (the codec checks first).
  void Append(std::string_view name, const Value& value);
  // Makes room for `properties` properties whose names and texts take `text_bytes` in all.
  void Reserve(size_t properties, size_t text_bytes = 0);
  // Removes `name`; returns whether it was present.
  bool Remove(std::string_view name);

  // Makes the properties immutable and shared with every later copy of this message (see above).
  void Share() { shared_ = true; }
  // A copy of the properties alone (shared as a copy shares them), without the metadata: what a
  // cache keeps of an answer.
  Message PropertiesOnly() const;
  bool shared() const { return shared_; }

  // The metadata; a message without any reads an empty Meta. A write through meta() while a
  // context holds the same Meta (ShareMeta) first takes a private copy, so the context keeps
  // what the message carried when it was dispatched. A reference it returned must not be
  // written after a ShareMeta(): take it again.
  Meta& meta() {
    if (meta_ == nullptr) return NewMeta();
    if (meta_->refs.load(std::memory_order_acquire) != 1) UnshareMeta();
    return meta_->meta;
  }
  const Meta& meta() const { return meta_ != nullptr ? meta_->meta : EmptyMeta(); }
  // The metadata held shared, not copied: the bus hands it to the handler's Context this way.
  MetaRef ShareMeta() const;

  // --- Seed notation -------------------------------------------------------------------------
  // "store:load,kind:entry,id:42" for the routing properties (string, number, bool), in order.
  std::string RoutingString() const;

  friend bool operator==(const Message& a, const Message& b) {
    return a.properties() == b.properties() && a.meta() == b.meta();
  }

 private:
  // The index of the property named `name`, or -1.
  int IndexOf(std::string_view name) const;
  // The property named `name`, or nullptr: the one scan behind Find and IndexOf.
  const Property* FindProperty(std::string_view name) const;
  // Makes the block private to this message when it is shared; list_ must be set. A copy made
  // has room for `slots` more properties and `text_bytes` more text, so a write that follows
  // does not grow it again.
  void Unshare(uint32_t slots = 0, size_t text_bytes = 0);
  // A private block with room for `slots` more properties and `text_bytes` more bytes of text.
  void MakeRoom(uint32_t slots, size_t text_bytes);
  // Copies `bytes` into the block's text; room must have been made.
  std::string_view Store(std::string_view bytes);
  // Metadata comes from a per-thread pool of cleared Meta objects: a message is moved several
  // times on its way through a bus, and moving a pointer costs less than moving the strings of an
  // id and a trace (each a memcpy call); a message's end returns its Meta to the pool.
  Meta& NewMeta();
  static MetaBox* TakeBox();
  static const Meta& EmptyMeta();
  // Drops a holder of `box`; the last one returns it to the pool.
  static void ReleaseMeta(MetaBox* box) noexcept;
  static void RecycleMeta(MetaBox* box) noexcept;
  // Gives this message a private copy of its Meta, which a context holds too.
  void UnshareMeta();
  // Takes `other`'s properties as a copy does (a reference to a shared block, else a copy).
  void CopyPropertiesOf(const Message& other);
  static void Release(PropertyList* list, bool shared);
  friend class MetaRef;

  PropertyList* list_ = nullptr;  // null until the first property
  bool shared_ = false;           // copies share list_ (set by Share())
  MetaBox* meta_ = nullptr;       // from the pool; null until the metadata is first written
};

// A shared, read-only hold on a Meta: what a Context keeps of the message it was made for, a
// reference count where a copy cost the copies of its strings. Null reads an empty Meta.
// Thread-safety: a value, as std::shared_ptr.
class MetaRef {
 public:
  MetaRef() = default;
  // Holds a copy of `meta`.
  explicit MetaRef(const Meta& meta) : box_(Message::TakeBox()) { box_->meta = meta; }
  MetaRef(const MetaRef& other) noexcept : box_(other.box_) {
    if (box_ != nullptr) box_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  MetaRef(MetaRef&& other) noexcept : box_(std::exchange(other.box_, nullptr)) {}
  MetaRef& operator=(MetaRef other) noexcept {
    std::swap(box_, other.box_);
    return *this;
  }
  ~MetaRef() {
    if (box_ != nullptr) Message::ReleaseMeta(box_);
  }

  const Meta& operator*() const { return box_ != nullptr ? box_->meta : Message::EmptyMeta(); }
  const Meta* operator->() const { return &**this; }

 private:
  friend class Message;
  explicit MetaRef(MetaBox* box) noexcept : box_(box) {}
  MetaBox* box_ = nullptr;
};

inline MetaRef Message::ShareMeta() const {
  if (meta_ == nullptr) return MetaRef();
  meta_->refs.fetch_add(1, std::memory_order_relaxed);
  return MetaRef(meta_);
}

inline void Message::ReleaseMeta(MetaBox* box) noexcept {
  // A sole holder writes no atomic: no one else can take a reference to a box only it holds.
  if (box->refs.load(std::memory_order_acquire) == 1 ||
      box->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
    RecycleMeta(box);
}

inline void Message::Release(PropertyList* list, bool shared) {
  if (list == nullptr) return;
  // An unshared block has one holder: no atomic write to free it.
  if (shared) return PropertyList::ReleaseShared(list);
  PropertyList::Free(list);
}

}  // namespace shardkit
