#include "shardkit/services/registry.h"

#include <fmt/format.h>

#include "builtin_services.h"

namespace shardkit::services {

ServiceRegistry& ServiceRegistry::Global() {
  static ServiceRegistry* registry = [] {
    auto* r = new ServiceRegistry();  // never destroyed: factories may be looked up at exit
    RegisterBuiltinServices(*r);
    return r;
  }();
  return *registry;
}

ServiceDirectory& ServiceDirectory::Process() {
  static auto* directory = new ServiceDirectory();  // never destroyed: used until exit
  return *directory;
}

std::shared_ptr<void> ServiceDirectory::Find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, value] : objects_) {
    if (name == key) return value;
  }
  return nullptr;
}

void ServiceDirectory::Put(const std::string& key, std::shared_ptr<void> value) {
  std::shared_ptr<void> replaced;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = objects_.begin(); it != objects_.end(); ++it) {
    if (it->first == key) {
      replaced = std::move(it->second);
      if (value) {
        it->second = std::move(value);
      } else {
        objects_.erase(it);
      }
      return;
    }
  }
  if (value) objects_.emplace_back(key, std::move(value));
}

std::vector<std::string> ServiceDirectory::Keys(std::string_view prefix) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> keys;
  for (const auto& [name, value] : objects_) {
    if (std::string_view(name).substr(0, prefix.size()) == prefix) keys.push_back(name);
  }
  return keys;
}

const ServiceEnvironment& ServiceContext::DefaultEnvironment() {
  static const ServiceEnvironment environment;
  return environment;
}

Status RegisterServiceType(std::string type, ServiceFactory factory) {
  return ServiceRegistry::Global().Register(std::move(type), std::move(factory));
}

}  // namespace shardkit::services
