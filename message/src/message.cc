#include "shardkit/message/message.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

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

}  // namespace

const Value* Message::Find(std::string_view name) const {
  for (const Property& p : properties()) {
    if (p.name.size() == name.size() &&
        internal::SameBytes(p.name.data(), name.data(), name.size()))
      return &p.value;
  }
  return nullptr;
}

Value* Message::FindMutable(std::string_view name) {
  for (Property& p : Own()) {
    if (p.name == name) return &p.value;
  }
  return nullptr;
}

std::optional<std::string_view> Message::GetString(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kString) return std::nullopt;
  return std::string_view(v->text);
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
  if (v == nullptr || v->type != ValueType::kBool) return std::nullopt;
  return v->text == "true";
}

std::optional<std::string_view> Message::GetObjectJson(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kObject) return std::nullopt;
  return std::string_view(v->text);
}

std::optional<std::string_view> Message::GetArrayJson(std::string_view name) const {
  const Value* v = Find(name);
  if (v == nullptr || v->type != ValueType::kArray) return std::nullopt;
  return std::string_view(v->text);
}

std::vector<Property>& Message::Own() {
  if (shared_) {
    properties_ = *shared_;
    shared_.reset();
  }
  return properties_;
}

void Message::Share() {
  if (shared_) return;
  shared_ = std::make_shared<const std::vector<Property>>(std::move(properties_));
  properties_.clear();
}

Message& Message::Set(std::string_view name, Value value) {
  if (Value* existing = FindMutable(name)) {
    *existing = std::move(value);
  } else {
    // Most messages have a handful of properties: one allocation instead of three.
    if (properties_.capacity() == 0) properties_.reserve(6);
    properties_.push_back(Property{std::string(name), std::move(value)});
  }
  return *this;
}

Message& Message::SetString(std::string_view name, std::string_view value) {
  return Set(name, Value{ValueType::kString, std::string(value)});
}

Message& Message::SetInt(std::string_view name, int64_t value) {
  return Set(name, Value{ValueType::kNumber, fmt::format("{}", value)});
}

Message& Message::SetUint(std::string_view name, uint64_t value) {
  return Set(name, Value{ValueType::kNumber, fmt::format("{}", value)});
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
  return Set(name, Value{ValueType::kObject, std::string(json)});
}

Message& Message::SetObjectJson(std::string_view name, std::string&& json) {
  return Set(name, Value{ValueType::kObject, std::move(json)});
}

Message& Message::SetArrayJson(std::string_view name, std::string_view json) {
  return Set(name, Value{ValueType::kArray, std::string(json)});
}

bool Message::Remove(std::string_view name) {
  Own();
  for (auto it = properties_.begin(); it != properties_.end(); ++it) {
    if (it->name == name) {
      properties_.erase(it);
      return true;
    }
  }
  return false;
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
