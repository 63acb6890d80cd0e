// Internal: the built-in service types (echo, kv), documented in registry.h.
#pragma once

#include "shardkit/services/registry.h"

namespace shardkit::services {

void RegisterBuiltinServices(ServiceRegistry& registry);

}  // namespace shardkit::services
