// ReplyFn: receives the outcome of a request exactly once.
//
// What std::function<void(Result<Message>)> did, with room for the callable in the object itself:
// a callable of up to kInlineBytes (a lambda capturing a few pointers, or a string and a pointer,
// or a std::function) is held in place, so making, moving, copying and calling a reply allocates
// nothing. A larger callable is held on the heap. (std::function holds only 16 bytes in place:
// every reply wrapper cost an allocation, and every copy of one another.)
//
// A ReplyFn also knows the id of the request it answers (AnswerTo, set by Bus::Act) and stamps it
// on a successful reply's meta$.id, so the bus wraps no second callback around the caller's.
//
// Thread-safety: a value, like std::function; call it from any thread, once.
#pragma once

#include <cstddef>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"

namespace shardkit {

class ReplyFn {
 public:
  static constexpr size_t kInlineBytes = 64;

  ReplyFn() noexcept = default;
  ReplyFn(std::nullptr_t) noexcept {}  // NOLINT: as std::function
  template <typename F, typename D = std::decay_t<F>,
            typename = std::enable_if_t<!std::is_same_v<D, ReplyFn> &&
                                        std::is_invocable_v<D&, Result<Message>&&>>>
  ReplyFn(F&& f) {  // NOLINT: implicit, as std::function
    static_assert(std::is_copy_constructible_v<D>, "a ReplyFn's callable must be copyable");
    if (IsNull(f)) return;
    if constexpr (kFitsInline<D>) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      ::new (static_cast<void*>(storage_)) D*(new D(std::forward<F>(f)));
      ops_ = &kHeapOps<D>;
    }
  }

  ReplyFn(const ReplyFn& other) : answers_(other.answers_) {
    if (other.ops_ != nullptr) other.ops_->copy(other.storage_, storage_);
    ops_ = other.ops_;
  }
  ReplyFn(ReplyFn&& other) noexcept : answers_(std::move(other.answers_)) { Take(other); }
  ReplyFn& operator=(const ReplyFn& other) {
    if (this != &other) *this = ReplyFn(other);
    return *this;
  }
  ReplyFn& operator=(ReplyFn&& other) noexcept {
    if (this != &other) {
      Reset();
      answers_ = std::move(other.answers_);
      Take(other);
    }
    return *this;
  }
  ReplyFn& operator=(std::nullptr_t) noexcept {
    Reset();
    answers_.clear();
    return *this;
  }
  ~ReplyFn() { Reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  friend bool operator==(const ReplyFn& f, std::nullptr_t) { return !f; }

  // Calls the callable (throws std::bad_function_call when there is none, as std::function does).
  void operator()(Result<Message> result) const {
    if (ops_ == nullptr) throw std::bad_function_call();
    if (!answers_.empty() && result.ok()) result->meta().id = answers_;
    ops_->call(storage_, std::move(result));
  }

  // Makes this callback stamp `id` on a successful reply's meta$.id. A callback that already
  // answers a request keeps that id: a handler that hands its own reply on to a further Act still
  // answers its caller's request, whose id the caller must see.
  void AnswerTo(std::string_view id) {
    if (answers_.empty()) answers_ = id;
  }

 private:
  struct Ops {
    void (*call)(void* target, Result<Message>&& result);
    void (*copy)(const void* from, void* to);
    void (*relocate)(void* from, void* to) noexcept;  // move to `to`, destroy `from`
    void (*destroy)(void* target) noexcept;
  };

  template <typename D>
  static constexpr bool kFitsInline =
      sizeof(D) <= kInlineBytes &&
      alignof(D) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<D>;

  template <typename D>
  static bool IsNull(const D& f) {
    if constexpr (std::is_pointer_v<D>) {
      return f == nullptr;
    } else if constexpr (std::is_same_v<D, std::function<void(Result<Message>)>>) {
      return !f;
    } else {
      return false;
    }
  }

  template <typename D>
  static D& Inline(void* p) {
    return *std::launder(static_cast<D*>(p));
  }
  template <typename D>
  static D*& Heap(void* p) {
    return *std::launder(static_cast<D**>(p));
  }

  template <typename D>
  static constexpr Ops kInlineOps = {
      [](void* t, Result<Message>&& r) { (void)std::invoke(Inline<D>(t), std::move(r)); },
      [](const void* from, void* to) { ::new (to) D(Inline<D>(const_cast<void*>(from))); },
      [](void* from, void* to) noexcept {
        ::new (to) D(std::move(Inline<D>(from)));
        Inline<D>(from).~D();
      },
      [](void* t) noexcept { Inline<D>(t).~D(); }};

  template <typename D>
  static constexpr Ops kHeapOps = {
      [](void* t, Result<Message>&& r) { (void)std::invoke(*Heap<D>(t), std::move(r)); },
      [](const void* from, void* to) { ::new (to) D*(new D(*Heap<D>(const_cast<void*>(from)))); },
      [](void* from, void* to) noexcept { ::new (to) D*(Heap<D>(from)); },
      [](void* t) noexcept { delete Heap<D>(t); }};

  void Take(ReplyFn& other) noexcept {
    if (other.ops_ != nullptr) other.ops_->relocate(other.storage_, storage_);
    ops_ = std::exchange(other.ops_, nullptr);
  }
  void Reset() noexcept {
    if (ops_ != nullptr) std::exchange(ops_, nullptr)->destroy(storage_);
  }

  alignas(std::max_align_t) mutable unsigned char storage_[kInlineBytes];
  const Ops* ops_ = nullptr;
  std::string answers_;  // the id of the request this callback answers; empty: none
};

}  // namespace shardkit
