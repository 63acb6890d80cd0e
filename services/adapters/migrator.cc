// migrator: migrate/'s message service (migrate/service.h) over the shards this node serves,
// with sources and targets on other nodes reached by the replication protocol (remote_store.h).
#include <fmt/format.h>

#include <filesystem>
#include <mutex>

#include "adapters.h"
#include "remote_store.h"
#include "shardkit/migrate/service.h"

namespace shardkit::services {

// One migrator service per migrations directory in a node: a reload builds a new service instance
// on the same one, so a migration in progress is never opened twice. The last instance gone (the
// node stops, not a reload) closes it and takes it out of the directory, so a node started again
// in this process resumes the migrations from disk.
Result<ServiceInstance> MakeMigrator(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "dir"}); !st.ok()) return st;
  auto dir = s.GetString("dir");
  if (!dir.ok()) return dir.status();
  if (std::error_code ec; !std::filesystem::create_directories(*dir, ec) && ec) {
    return s.Error("dir", fmt::format("cannot create {}: {}", *dir, ec.message()));
  }
  auto map = MapNamed(ctx);
  if (!map.ok()) return map.status();
  // The directory holds the migrator service, so it outlives it: a plain pointer, no cycle.
  ServiceDirectory* directory = &ctx.environment.directory_or_process();
  std::string key = "migrator/" + *dir;
  static std::mutex mu;
  std::shared_ptr<migrate::MigratorService> migrator;
  {
    std::lock_guard<std::mutex> lock(mu);
    migrator = directory->Find<migrate::MigratorService>(key);
    if (!migrator) {
      auto find_shard = [directory](const std::string& shard) {
        ServedShard served = FindServedShard(*directory, shard);
        return migrate::Participant{shard, served.store, served.gate, {}, {}};
      };
      // A source or target on another node: its gate is its guard's there, thrown over the
      // network.
      auto find_remote = [](const std::string& shard, const std::string& node,
                            std::string_view role) -> Result<migrate::Participant> {
        RemoteStoreOptions options{node, shard};
        options.role = role;
        auto remote = OpenRemoteStore(std::move(options));
        if (!remote.ok()) return remote.status();
        return migrate::Participant{shard, remote->store, remote->gate, node, remote->process};
      };
      migrator = migrate::MakeMigratorService({*dir, *map, find_shard, find_remote});
      directory->Put(key, migrator);
    }
    migrator->Acquire();
  }
  auto stop = [migrator, directory, key] {
    std::lock_guard<std::mutex> lock(mu);
    if (migrator->Release()) directory->Put(key, nullptr);
  };
  ServiceInstance instance{
      migrator, {"migrate:*"}, stop, [migrator] { migrator->ResumeFromDisk(); }};
  instance.operations = {"migrate:*"};
  return instance;
}

}  // namespace shardkit::services
