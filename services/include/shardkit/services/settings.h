// Settings: the type-specific keys of one [[service]] table of a node config, as seen by that
// service type's factory (registry.h).
//
// Getters return the value or an `invalid` Status naming the file, the service and the key:
//   "node.toml: service 'orders' (store): key 'path': must be a string"
// A getter with a fallback returns the fallback when the key is absent (never when it has the
// wrong type). CheckOnly refuses keys a factory does not know, so typos are not silently ignored.
// Json() gives the whole table as JSON text for structured settings (arrays of tables), to be read
// with shardkit::ParseJson.
//
// Thread-safety: an immutable value; safe to share between threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardkit/message/status.h"

namespace shardkit::services {

class Settings {
 public:
  // An empty table (no keys); `where` prefixes error messages.
  explicit Settings(std::string where = "settings");
  // From TOML text (for tests and tools); `invalid` if it does not parse.
  static Result<Settings> FromToml(std::string_view toml_text, std::string where = "settings");

  Result<std::string> GetString(std::string_view key,
                                std::optional<std::string> fallback = std::nullopt) const;
  Result<int64_t> GetInt(std::string_view key,
                         std::optional<int64_t> fallback = std::nullopt) const;
  Result<double> GetDouble(std::string_view key,
                           std::optional<double> fallback = std::nullopt) const;
  Result<bool> GetBool(std::string_view key, std::optional<bool> fallback = std::nullopt) const;
  Result<std::vector<std::string>> GetStringList(
      std::string_view key, std::optional<std::vector<std::string>> fallback = std::nullopt) const;

  bool Has(std::string_view key) const;
  std::vector<std::string> Keys() const;
  // `invalid` naming the first key not in `known`.
  Status CheckOnly(std::initializer_list<std::string_view> known) const;
  Status CheckOnly(const std::vector<std::string_view>& known) const;
  // The whole table as compact JSON text.
  std::string Json() const;
  // "node.toml: service 'orders' (store)" — the prefix of error messages.
  const std::string& where() const { return where_; }
  // An `invalid` Status for `key`: "<where>: key '<key>': <problem>".
  Status Error(std::string_view key, std::string_view problem) const;

  // Internal: the parsed table (a toml::table); null for an empty table.
  struct Data;
  Settings(std::shared_ptr<const Data> data, std::string where);
  const Data* data() const { return data_.get(); }

 private:
  std::shared_ptr<const Data> data_;
  std::string where_;
};

}  // namespace shardkit::services
