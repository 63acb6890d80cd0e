#include "shardkit/message/message.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "find_property.h"
#include "same_bytes.h"
#include "shardkit/message/json.h"

namespace shardkit {
namespace {

template <typename T>
std::optional<T> ParseInteger(const Value* value) {
  if (value == nullptr || value->type != ValueType::kNumber) return std::nullopt;
  T out{};
  const char* begin = value->text.data();
  const char* end = begin + value->text.size();
  auto [ptr, ec] = std::from_chars(begin, end, out);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return out;
}

// Room for the first properties of a message built by hand (a reply): one allocation for a
// handful of properties and their text.
constexpr uint32_t kFirstSlots = 6;
constexpr size_t kFirstText = 96;

// Copies `bytes` to `out` and returns where they now are.
std::string_view Put(char*& out, std::string_view bytes) {
  if (bytes.empty()) return {out, 0};
  internal::CopyBytes(out, bytes.data(), bytes.size());
  out += bytes.size();
  return {out - bytes.size(), bytes.size()};
}

// Whether `meta` holds nothing: a null Meta reads the same.
bool Blank(const Meta& meta) { return meta.empty() && meta.via.empty(); }

}  // namespace

PropertyList* PropertyList::New(uint32_t capacity, size_t text_capacity) {
  void* raw = ::operator new(sizeof(PropertyList) + capacity * sizeof(Property) + text_capacity);
  return new (raw) PropertyList(capacity, text_capacity);
}

void PropertyList::Free(PropertyList* list) {
  for (Chunk* chunk = list->chunks_; chunk != nullptr;) {
    Chunk* next = chunk->next;
    ::operator delete(chunk);
    chunk = next;
  }
  if (list->copied_from_ != nullptr) ReleaseShared(list->copied_from_);
  ::operator delete(list);
}

PropertyList* PropertyList::Copy(uint32_t capacity, size_t text_capacity) const {
  PropertyList* to = New(capacity, text_capacity);
  char* out = to->text_;
  Property* slot = to->slots_;
  for (const Property& p : *this) {
    std::string_view name = Put(out, p.name);
    new (slot++) Property{name, Value{p.value.type, Put(out, p.value.text)}};
  }
  to->count_ = count_;
  to->text_used_ = out - to->text_;
  return to;
}

void* PropertyList::AddChunk(size_t bytes) {
  static_assert(sizeof(Chunk) % alignof(Property) == 0);
  auto* chunk = static_cast<Chunk*>(::operator new(sizeof(Chunk) + bytes));
  chunk->next = chunks_;
  chunks_ = chunk;
  return chunk + 1;
}

void PropertyList::Grow(uint32_t slots, size_t text_bytes) {
  if (capacity_ - count_ < slots) {
    const uint32_t capacity = std::max(2 * capacity_, count_ + slots);
    auto* grown = static_cast<Property*>(AddChunk(capacity * sizeof(Property)));
    for (uint32_t i = 0; i < count_; ++i) new (grown + i) Property(slots_[i]);
    slots_ = grown;
    capacity_ = capacity;
  }
  if (text_capacity_ - text_used_ < text_bytes) {
    const size_t size = std::max(2 * text_capacity_, text_bytes);
    text_ = static_cast<char*>(AddChunk(size));
    text_used_ = 0;
    text_capacity_ = size;
  }
}

size_t PropertyList::LiveText() const {
  size_t bytes = 0;
  for (const Property& p : *this) bytes += p.name.size() + p.value.text.size();
  return bytes;
}

const PropertyList& PropertyList::Empty() {
  static const PropertyList empty(0, 0);
  return empty;
}

bool operator==(const PropertyList& a, const PropertyList& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

Message::Message(const Message& other) {
  // An empty Meta (one read, or moved out of) is not copied: a null one reads the same, and a
  // cached answer copied on every hit would take one from the pool for nothing.
  if (other.meta_ != nullptr && !Blank(other.meta_->meta)) NewMeta() = other.meta_->meta;
  CopyPropertiesOf(other);
}

void Message::CopyPropertiesOf(const Message& other) {
  shared_ = other.shared_;
  if (other.list_ == nullptr) return;
  if (shared_) {
    other.list_->refs_.fetch_add(1, std::memory_order_relaxed);
    list_ = other.list_;
  } else {
    list_ = other.list_->Copy(other.list_->capacity_, other.list_->LiveText());
  }
}

Message Message::PropertiesOnly() const {
  Message copy;
  copy.CopyPropertiesOf(*this);
  return copy;
}

Message& Message::operator=(const Message& other) {
  if (this != &other) *this = Message(other);
  return *this;
}

Message& Message::operator=(Message&& other) noexcept {
  if (this == &other) return *this;
  Release(list_, shared_);
  list_ = std::exchange(other.list_, nullptr);
  shared_ = other.shared_;
  if (meta_ != nullptr) ReleaseMeta(meta_);
  meta_ = std::exchange(other.meta_, nullptr);
  return *this;
}

namespace {

// Cleared Meta objects of this thread. A thread's pool is freed when the thread ends; a message
// that ends after that (a thread_local's) frees its Meta itself.
// (A plain flag says so: it lives until the thread's storage goes.)
thread_local bool meta_pool_gone = false;
struct MetaPool {
  static constexpr uint32_t kSize = 64;
  MetaBox* free[kSize];
  uint32_t count = 0;
  ~MetaPool() {
    for (uint32_t i = 0; i < count; ++i) delete free[i];
    meta_pool_gone = true;
  }
};
thread_local MetaPool meta_pool;

// Empties a string, letting go of a buffer too large to keep in the pool.
void Clear(std::string& text) {
  if (text.capacity() > 64) {
    std::string().swap(text);
  } else {
    text.clear();
  }
}

}  // namespace

MetaBox* Message::TakeBox() {
  if (meta_pool_gone) return new MetaBox();
  MetaPool& pool = meta_pool;
  return pool.count != 0 ? pool.free[--pool.count] : new MetaBox();
}

Meta& Message::NewMeta() {
  meta_ = TakeBox();
  return meta_->meta;
}

void Message::UnshareMeta() {
  MetaBox* copy = TakeBox();
  copy->meta = meta_->meta;
  ReleaseMeta(std::exchange(meta_, copy));
}

const Meta& Message::EmptyMeta() {
  static const Meta empty;
  return empty;
}

void Message::RecycleMeta(MetaBox* box) noexcept {
  if (meta_pool_gone || meta_pool.count == MetaPool::kSize) {
    delete box;
    return;
  }
  box->refs.store(1, std::memory_order_relaxed);
  Meta* meta = &box->meta;
  if (!Blank(*meta)) {
    Clear(meta->id);
    Clear(meta->trace);
    Clear(meta->parent);
    Clear(meta->idempotency_key);
    meta->deadline = 0;
    meta->hops = 0;
    std::vector<std::string>().swap(meta->via);
  }
  meta_pool.free[meta_pool.count++] = box;
}

const Property* Message::FindProperty(std::string_view name) const {
  return internal::FindPropertyIn(properties(), name);
}

const Value* Message::Find(std::string_view name) const {
  const Property* found = FindProperty(name);
  return found != nullptr ? &found->value : nullptr;
}

int Message::IndexOf(std::string_view name) const {
  const Property* found = FindProperty(name);
  return found != nullptr ? static_cast<int>(found - properties().begin()) : -1;
}

void PropertyList::ReleaseShared(PropertyList* list) {
  if (list->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) PropertyList::Free(list);
}

void Message::Unshare(uint32_t slots, size_t text_bytes) {
  if (shared_ && list_->refs_.load(std::memory_order_acquire) > 1) {
    PropertyList* copy = list_->Copy(std::max(list_->capacity_, list_->count_ + slots),
                                     list_->LiveText() + text_bytes);
    copy->copied_from_ = list_;  // keeps this message's reference
    list_ = copy;
  }
  shared_ = false;
}

void Message::MakeRoom(uint32_t slots, size_t text_bytes) {
  if (list_ == nullptr) {
    list_ = PropertyList::New(std::max(kFirstSlots, slots), std::max(kFirstText, text_bytes));
    shared_ = false;
    return;
  }
  Unshare(slots, text_bytes);
  list_->Grow(slots, text_bytes);
}

std::string_view Message::Store(std::string_view bytes) {
  char* out = list_->text_ + list_->text_used_;
  std::string_view stored = Put(out, bytes);
  list_->text_used_ += bytes.size();
  return stored;
}

void Message::Append(std::string_view name, const Value& value) {
  const size_t bytes = name.size() + value.text.size();
  // Room checked here, without calls, for the common case: a message being built or parsed
  // into a block with room (each call cost more than the copy of a short name or value).
  if (list_ == nullptr || shared_ || list_->count_ == list_->capacity_ ||
      list_->text_capacity_ - list_->text_used_ < bytes) {
    MakeRoom(1, bytes);
  }
  PropertyList& list = *list_;
  char* out = list.text_ + list.text_used_;
  const std::string_view stored_name = Put(out, name);
  const std::string_view stored_text = Put(out, value.text);
  list.text_used_ = out - list.text_;
  new (list.slots() + list.count_) Property{stored_name, Value{value.type, stored_text}};
  ++list.count_;
}

void Message::Reserve(size_t properties, size_t text_bytes) {
  const size_t slots = properties - std::min(properties, size());
  MakeRoom(static_cast<uint32_t>(slots), text_bytes);
}

std::optional<std::string_view> Message::GetString(std::string_view name) const {
  const Value* v = Find(name);
  return v != nullptr ? v->AsString() : std::nullopt;
}

std::optional<int64_t> Message::GetInt(std::string_view name) const {
  return ParseInteger<int64_t>(Find(name));
}

std::optional<uint64_t> Message::GetUint(std::string_view name) const {
  return ParseInteger<uint64_t>(Find(name));
}

std::optional<double> Message::GetDouble(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kNumber) return std::nullopt;
  // std::from_chars for double is available in GCC 12's libstdc++.
  double out = 0;
  auto [ptr, ec] = std::from_chars(v->text.data(), v->text.data() + v->text.size(), out);
  if (ec != std::errc() || ptr != v->text.data() + v->text.size()) return std::nullopt;
  return out;
}

std::optional<bool> Message::GetBool(std::string_view name) const {
  const Value* v = Find(name);
  return v != nullptr ? v->AsBool() : std::nullopt;
}

std::optional<std::string_view> Message::GetObjectJson(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kObject) return std::nullopt;
  return v->text;
}

std::optional<std::string_view> Message::GetArrayJson(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kArray) return std::nullopt;
  return v->text;
}

Message& Message::Set(std::string_view name, const Value& value) {
  const int index = IndexOf(name);
  if (index < 0) {
    Append(name, value);
    return *this;
  }
  // The shared block stays until this message dies: `value` may be a view into it.
  Unshare(0, value.text.size());
  Property& existing = list_->slots()[index];
  if (value.text.size() <= existing.value.text.size()) {
    // In place: the new text may be part of the old one, hence memmove.
    char* at = const_cast<char*>(existing.value.text.data());
    if (!value.text.empty()) std::memmove(at, value.text.data(), value.text.size());
    existing.value = Value{value.type, std::string_view(at, value.text.size())};
  } else {
    MakeRoom(0, value.text.size());
    list_->slots()[index].value = Value{value.type, Store(value.text)};
  }
  return *this;
}

Message& Message::SetString(std::string_view name, std::string_view value) {
  return Set(name, Value{ValueType::kString, value});
}

Message& Message::SetInt(std::string_view name, int64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  return Set(name, Value{ValueType::kNumber, std::string_view(digits, end - digits)});
}

Message& Message::SetUint(std::string_view name, uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  return Set(name, Value{ValueType::kNumber, std::string_view(digits, end - digits)});
}

Message& Message::SetDouble(std::string_view name, double value) {
  // JSON has no NaN or infinity; they become null rather than invalid JSON text.
  if (!std::isfinite(value)) return SetNull(name);
  return Set(name, Value{ValueType::kNumber, fmt::format("{}", value)});
}

Message& Message::SetBool(std::string_view name, bool value) {
  return Set(name, Value{ValueType::kBool, value ? "true" : "false"});
}

Message& Message::SetNull(std::string_view name) {
  return Set(name, Value{ValueType::kNull, "null"});
}

Message& Message::SetObjectJson(std::string_view name, std::string_view json) {
  return Set(name, Value{ValueType::kObject, json});
}

Message& Message::SetArrayJson(std::string_view name, std::string_view json) {
  return Set(name, Value{ValueType::kArray, json});
}

bool Message::Remove(std::string_view name) {
  const int index = IndexOf(name);
  if (index < 0) return false;
  Unshare();
  Property* slots = list_->slots();
  for (uint32_t j = index + 1; j < list_->count_; ++j) slots[j - 1] = slots[j];
  --list_->count_;
  return true;
}

std::string Message::RoutingString() const {
  std::string out;
  for (const Property& p : properties()) {
    if (!p.value.is_routable()) continue;
    if (!out.empty()) out += ',';
    out += p.name;
    out += ':';
    if (p.value.type == ValueType::kString &&
        (p.value.text.empty() ||
         p.value.text.find_first_of(",:\"' \t\r\n*?") != std::string::npos)) {
      AppendJsonString(p.value.text, out);
    } else {
      out += p.value.text;
    }
  }
  return out;
}

}  // namespace shardkit
