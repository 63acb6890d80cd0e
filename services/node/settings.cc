#include "shardkit/services/settings.h"

#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "settings_data.h"
#include "shardkit/message/json.h"

namespace shardkit::services {

namespace {

const toml::node* Lookup(const Settings::Data* data, std::string_view key) {
  if (data == nullptr) return nullptr;
  return data->table.get(key);
}

}  // namespace

Settings::Settings(std::string where) : where_(std::move(where)) {}

Settings::Settings(std::shared_ptr<const Data> data, std::string where)
    : data_(std::move(data)), where_(std::move(where)) {}

Result<Settings> Settings::FromToml(std::string_view toml_text, std::string where) {
  try {
    auto data = std::make_shared<Data>();
    data->table = toml::parse(toml_text);
    return Settings(std::move(data), std::move(where));
  } catch (const toml::parse_error& e) {
    return Status::Invalid(fmt::format("{}: {}", where, e.description()));
  }
}

Status Settings::Error(std::string_view key, std::string_view problem) const {
  return Status::Invalid(fmt::format("{}: key '{}': {}", where_, key, problem));
}

bool Settings::Has(std::string_view key) const { return Lookup(data_.get(), key) != nullptr; }

std::vector<std::string> Settings::Keys() const {
  std::vector<std::string> keys;
  if (data_) {
    for (const auto& [key, value] : data_->table) keys.emplace_back(key.str());
  }
  return keys;
}

Status Settings::CheckOnly(std::initializer_list<std::string_view> known) const {
  return CheckOnly(std::vector<std::string_view>(known));
}

Status Settings::CheckOnly(const std::vector<std::string_view>& known) const {
  for (const std::string& key : Keys()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == key;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Error(key, fmt::format("unknown key (known: {})", list.empty() ? "none" : list));
    }
  }
  return Status::Ok();
}

Result<std::string> Settings::GetString(std::string_view key,
                                        std::optional<std::string> fallback) const {
  const toml::node* node = Lookup(data_.get(), key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return Error(key, "missing (a string is required)");
  }
  if (auto v = node->value<std::string>(); v && node->is_string()) return *v;
  return Error(key, "must be a string");
}

Result<int64_t> Settings::GetInt(std::string_view key, std::optional<int64_t> fallback) const {
  const toml::node* node = Lookup(data_.get(), key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return Error(key, "missing (an integer is required)");
  }
  if (node->is_integer()) return node->as_integer()->get();
  return Error(key, "must be an integer");
}

Result<double> Settings::GetDouble(std::string_view key, std::optional<double> fallback) const {
  const toml::node* node = Lookup(data_.get(), key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return Error(key, "missing (a number is required)");
  }
  if (node->is_floating_point()) return node->as_floating_point()->get();
  if (node->is_integer()) return static_cast<double>(node->as_integer()->get());
  return Error(key, "must be a number");
}

Result<bool> Settings::GetBool(std::string_view key, std::optional<bool> fallback) const {
  const toml::node* node = Lookup(data_.get(), key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return Error(key, "missing (true or false is required)");
  }
  if (node->is_boolean()) return node->as_boolean()->get();
  return Error(key, "must be true or false");
}

Result<std::vector<std::string>> Settings::GetStringList(
    std::string_view key, std::optional<std::vector<std::string>> fallback) const {
  const toml::node* node = Lookup(data_.get(), key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return Error(key, "missing (an array of strings is required)");
  }
  const toml::array* array = node->as_array();
  if (array == nullptr) return Error(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const toml::node& item : *array) {
    if (!item.is_string()) return Error(key, "must be an array of strings");
    out.push_back(item.as_string()->get());
  }
  return out;
}

std::string Settings::Json() const {
  if (!data_) return "{}";
  std::ostringstream out;
  out << toml::json_formatter(data_->table, toml::format_flags::none);
  // Compact, so equal tables give equal text (reload compares it).
  auto document = ParseJson(out.str(), where_);
  return document.ok() ? ToJsonText(*document) : out.str();
}

}  // namespace shardkit::services
