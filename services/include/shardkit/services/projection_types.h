// Projection types: the read models a `type = "projection"` service can run (docs/cqrs.md, "In a
// node config"). Its `projection = "<name>"` setting names a registered type; the type's factory
// reads the type's own settings and builds the projection and the queries it answers by default.
// The service itself reads the rest (path, log or feed, batch_size, timeouts) and runs the
// projection in its own RocksDB read model with read-your-writes.
//
// shardkit registers one type, `entities` (shardkit/cqrs/entities_projection.h; setting: kind).
// A read model of your own is one call, made once before nodes start, like a service type
// (registry.h; docs/extending.md, "Your own projection type"):
//
//   shardkit::services::RegisterProjectionType("likes-total", {
//       .settings = {"kind"},
//       .factory = [](const shardkit::services::Settings& s)
//           -> shardkit::Result<shardkit::services::ProjectionInstance> {
//         auto kind = s.GetString("kind", "likes");
//         if (!kind.ok()) return kind.status();
//         return shardkit::services::ProjectionInstance{MakeLikesTotal(*kind), {"likes:total"}};
//       }});
//
// Factory contract: read only the keys listed in `settings` (the service refuses any key that is
// neither its own nor listed, naming it); validate them, returning `s.Error(key, problem)` rather
// than throwing; open nothing (the service owns the read model's files). A name no type has is
// refused when the config loads: "key 'projection': unknown projection 'x' (registered: …)".
//
// Thread-safety: Register and Find are safe from any thread; factories run on the thread that
// starts or reloads a node.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardkit/cqrs/projection.h"
#include "shardkit/message/status.h"
#include "shardkit/services/named_registry.h"
#include "shardkit/services/settings.h"

namespace shardkit::services {

// What a projection type's factory builds.
struct ProjectionInstance {
  std::unique_ptr<cqrs::Projection> projection;
  // The queries it answers, in pattern.h notation, unless the [[service]] table lists its own
  // `patterns`.
  std::vector<std::string> patterns;
};

using ProjectionFactory = std::function<Result<ProjectionInstance>(const Settings&)>;

struct ProjectionType {
  std::vector<std::string> settings;  // the keys of the [[service]] table the factory reads
  ProjectionFactory factory;

  explicit operator bool() const { return static_cast<bool>(factory); }  // has a factory
};

class ProjectionRegistry : public NamedRegistry<ProjectionType> {
 public:
  ProjectionRegistry() : NamedRegistry("projection type") {}
  // The process-wide registry, with `entities`.
  static ProjectionRegistry& Global();
};

// ProjectionRegistry::Global().Register(name, type).
Status RegisterProjectionType(std::string name, ProjectionType type);

}  // namespace shardkit::services
