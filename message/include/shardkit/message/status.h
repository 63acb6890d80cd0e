// Status and Result<T>: errors as values on the data path.
//
// Every failure that crosses a handler boundary is a Status carrying one of the canonical codes of
// docs/architecture.md. On the wire a Status becomes
//   {"error$":{"code":"not_found","message":"…","details":{…}}}
// (see codec.h). No exception crosses a handler boundary; Result<T> carries either a value or a
// non-OK Status.
//
// Thread-safety: plain values; safe to copy and move between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardkit {

// The canonical error codes. Their wire names are the snake_case strings of CodeName().
enum class Code {
  kOk = 0,
  kNotFound,     // no such entity (a fact about data: never "nobody answered")
  kInvalid,      // the request is malformed; nothing was changed
  kConflict,     // optimistic-concurrency or insert-only failure
  kWrongShard,   // the key is outside the shard's range or the epoch is stale
  kTimeout,      // the deadline passed before an answer
  kOverloaded,   // a bounded queue is full; retry later
  kUnavailable,  // the target cannot be reached now
  kInternal,     // a bug or an unexpected failure (a handler threw, a disk failed)
  // No route: no pattern matches the message here (the node is not ready yet, or no service is
  // configured for it). Says nothing about data: the entity may well exist. Last, so the numbers
  // of the older codes stay as they were.
  kNoRoute,
};

// "ok", "not_found", "invalid", … — the wire name of a code.
std::string_view CodeName(Code code);
// The inverse of CodeName; nullopt for an unknown name.
std::optional<Code> CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  // OK.
  Status() = default;
  // An error. `details_json` is empty or the compact JSON text of an object with extra facts
  // (for example {"field":"ent","epoch":7}).
  Status(Code code, std::string message, std::string details_json = {})
      : code_(code), message_(std::move(message)), details_json_(std::move(details_json)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m, std::string d = {}) { return Of(Code::kNotFound, m, d); }
  static Status Invalid(std::string m, std::string d = {}) { return Of(Code::kInvalid, m, d); }
  // The one shape of bad input: `invalid`, message "<field>: <problem>" (the field first, as the
  // reply convention asks), details {"field":"<field>"}.
  static Status InvalidField(std::string_view field, std::string_view problem);
  static Status Conflict(std::string m, std::string d = {}) { return Of(Code::kConflict, m, d); }
  static Status WrongShard(std::string m, std::string d = {}) {
    return Of(Code::kWrongShard, m, d);
  }
  static Status Timeout(std::string m, std::string d = {}) { return Of(Code::kTimeout, m, d); }
  static Status Overloaded(std::string m, std::string d = {}) {
    return Of(Code::kOverloaded, m, d);
  }
  static Status Unavailable(std::string m, std::string d = {}) {
    return Of(Code::kUnavailable, m, d);
  }
  static Status Internal(std::string m, std::string d = {}) { return Of(Code::kInternal, m, d); }
  static Status NoRoute(std::string m, std::string d = {}) { return Of(Code::kNoRoute, m, d); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& details_json() const { return details_json_; }

  // "invalid: ent: must be an object" — for logs and test failure output.
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_ && a.details_json_ == b.details_json_;
  }

 private:
  // The named constructors' one body: moves the message and details they were given.
  static Status Of(Code code, std::string& m, std::string& d) {
    return {code, std::move(m), std::move(d)};
  }

  Code code_ = Code::kOk;
  std::string message_;
  std::string details_json_;
};

// A value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value)
      : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    assert(!std::get<1>(state_).ok() && "a Result holding a Status must hold an error");
  }

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // The value; only when ok().
  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error; only when !ok().
  const Status& status() const& {
    assert(!ok());
    return std::get<1>(state_);
  }
  Status&& status() && {
    assert(!ok());
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Status> state_;
};

}  // namespace shardkit
