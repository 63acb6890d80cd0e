// A table of named types that a node builds things from (service types in registry.h, projection
// types in projection_types.h): each name registered once, never removed, looked up by name.
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shardkit/message/status.h"

namespace shardkit::services {

// `T` converts to bool: false when it has no factory.
template <typename T>
class NamedRegistry {
 public:
  // `what` names an entry in errors ("service type").
  explicit NamedRegistry(std::string what) : what_(std::move(what)) {}

  // `invalid` for an empty name or no factory; `conflict` if `name` is already registered.
  Status Register(std::string name, T type) {
    if (name.empty()) return Status::Invalid("a " + what_ + " needs a name");
    if (!type) return Status::Invalid(what_ + " '" + name + "': no factory");
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : entries_) {
      if (entry.first == name)
        return Status::Conflict(what_ + " '" + name + "' is already registered");
    }
    entries_.emplace_back(std::move(name), std::make_shared<const T>(std::move(type)));
    return Status::Ok();
  }
  // The type called `name`, or null.
  std::shared_ptr<const T> Find(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : entries_) {
      if (entry.first == name) return entry.second;
    }
    return nullptr;
  }
  // The registered names, in the order they were registered.
  std::vector<std::string> Names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> names;
    for (const auto& entry : entries_) names.push_back(entry.first);
    return names;
  }

 private:
  const std::string what_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::shared_ptr<const T>>> entries_;  // guarded by mutex_
};

}  // namespace shardkit::services
