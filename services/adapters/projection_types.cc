// The projection-type registry (projection_types.h) and the one type shardkit registers, entities.
#include "shardkit/services/projection_types.h"

#include <fmt/format.h>

#include "shardkit/cqrs/entities_projection.h"

namespace shardkit::services {
namespace {

Result<ProjectionInstance> MakeEntities(const Settings& s) {
  auto kind = s.GetString("kind", "entry");
  if (!kind.ok()) return kind.status();
  if (kind->empty()) return s.Error("kind", "must not be empty");
  return ProjectionInstance{
      cqrs::MakeEntitiesProjection(*kind),
      {fmt::format("store:load,kind:\"{}\"", *kind), fmt::format("store:list,kind:\"{}\"", *kind)}};
}

}  // namespace

ProjectionRegistry& ProjectionRegistry::Global() {
  static ProjectionRegistry* registry = [] {
    auto* r = new ProjectionRegistry();  // never destroyed: factories may be looked up at exit
    (void)r->Register("entities", {.settings = {"kind"}, .factory = MakeEntities});
    return r;
  }();
  return *registry;
}

Status RegisterProjectionType(std::string name, ProjectionType type) {
  return ProjectionRegistry::Global().Register(std::move(name), std::move(type));
}

}  // namespace shardkit::services
