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

Status ProjectionRegistry::Register(std::string name, ProjectionType type) {
  if (name.empty()) return Status::Invalid("a projection type needs a name");
  if (!type.factory) return Status::Invalid(fmt::format("projection type '{}': no factory", name));
  std::lock_guard<std::mutex> lock(mutex_);
  auto [at, added] =
      types_.try_emplace(name, std::make_shared<const ProjectionType>(std::move(type)));
  if (!added)
    return Status::Conflict(fmt::format("projection type '{}' is already registered", name));
  return Status::Ok();
}

std::shared_ptr<const ProjectionType> ProjectionRegistry::Find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : it->second;
}

std::vector<std::string> ProjectionRegistry::Names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, type] : types_) names.push_back(name);
  return names;
}

Status RegisterProjectionType(std::string name, ProjectionType type) {
  return ProjectionRegistry::Global().Register(std::move(name), std::move(type));
}

}  // namespace shardkit::services
