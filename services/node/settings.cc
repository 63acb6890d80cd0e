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

namespace {

// What a typed getter names in its errors: "missing (<required>)" and "must be <must>".
struct Expect {
  std::string_view required;
  std::string_view must;
};

// Every typed getter: a missing key takes the fallback or is an error; a present one converts
// (`convert` returns nullopt for a value of the wrong type) or is an error.
template <typename T, typename Convert>
Result<T> Get(const Settings& settings, std::string_view key, std::optional<T> fallback,
              Expect expect, Convert convert) {
  const toml::node* node = Lookup(settings.data(), key);
  if (node == nullptr) {
    if (fallback) return *std::move(fallback);
    return settings.Error(key, fmt::format("missing ({})", expect.required));
  }
  std::optional<T> value = convert(*node);
  if (!value) return settings.Error(key, fmt::format("must be {}", expect.must));
  return *std::move(value);
}

std::optional<std::vector<std::string>> StringList(const toml::node& node) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return std::nullopt;
  std::vector<std::string> out;
  for (const toml::node& item : *array) {
    if (!item.is_string()) return std::nullopt;
    out.push_back(item.as_string()->get());
  }
  return out;
}

}  // namespace

Result<std::string> Settings::GetString(std::string_view key,
                                        std::optional<std::string> fallback) const {
  return Get(*this, key, std::move(fallback), {"a string is required", "a string"},
             [](const toml::node& n) { return n.value_exact<std::string>(); });
}

Result<int64_t> Settings::GetInt(std::string_view key, std::optional<int64_t> fallback) const {
  return Get(*this, key, fallback, {"an integer is required", "an integer"},
             [](const toml::node& n) { return n.value_exact<int64_t>(); });
}

Result<double> Settings::GetDouble(std::string_view key, std::optional<double> fallback) const {
  // An integer is a number too: `ratio = 1` reads as 1.0.
  return Get(*this, key, fallback, {"a number is required", "a number"},
             [](const toml::node& n) -> std::optional<double> {
               if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
               return n.value_exact<double>();
             });
}

Result<bool> Settings::GetBool(std::string_view key, std::optional<bool> fallback) const {
  return Get(*this, key, fallback, {"true or false is required", "true or false"},
             [](const toml::node& n) { return n.value_exact<bool>(); });
}

Result<std::vector<std::string>> Settings::GetStringList(
    std::string_view key, std::optional<std::vector<std::string>> fallback) const {
  return Get(*this, key, std::move(fallback),
             {"an array of strings is required", "an array of strings"}, StringList);
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
