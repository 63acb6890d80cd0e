// The migrator's message service: migrate:* over the live migrations of one migrations directory
// (docs/migration.md). A node builds it from a `migrator` [[service]]; it is a Handler like the
// store's (store/service.h), so it may be routed like any other service.
//
//   migrate:start,id:I  sources:[…] targets:[…]   create (a new id) or resume (the same id and
//                       [nodes:{shard:url}]       spec; another spec is a conflict), then copy;
//                       [max_rows_per_s:N]        `nodes` places sources and targets on other
//                                                 nodes (all of them: the migrator's node holds
//                                                 none and only coordinates);
//                       [max_lag:N]               the cutover's lag bound (default 10,000)
//   migrate:status|verify|cutover|rollback|complete|cancel|cleanup,id:I
//   migrate:list                                 {"migrations":[…]}: each open one, as status
//
// Every operation runs on the service's own thread, one at a time: a cutover waits for drains
// and fences and must not hold an I/O thread. Progress is published as info:migrate on the bus
// of the last message handled. Bad input answers `invalid` naming the field.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <shardkit/message/handler.h>
#include <shardkit/migrate/migration.h>
#include <shardkit/shard/shard_map.h>

namespace shardkit::migrate {

struct MigratorServiceOptions {
  std::string dir;  // where each migration's spec (<id>.spec) and journal (<id>.journal) live
  std::shared_ptr<shard::ShardMapHolder> map;  // the map a cutover moves
  // The store and gate serving a canonical shard name in this process; a null store when none.
  std::function<Participant(const std::string& shard)> find_shard;
  // The store serving `shard` on the node at URL `node` (a migration's source or target on
  // another node; `role` is "source" or "target"), or `invalid` naming the role, the shard and the
  // node (unreachable, no such store). Null: sources and targets must be in this process.
  std::function<Result<Participant>(const std::string& shard, const std::string& node,
                                    std::string_view role)>
      find_remote;
};

class MigratorService : public Handler {
 public:
  // A service user (a node's service instance) holds it from Acquire to Release: a reload builds
  // the new instance before it stops the old one, so migrations stay open across it. The last
  // Release closes the migrations (their replicators stop; the journals keep their state) and
  // returns true.
  virtual void Acquire() = 0;
  virtual bool Release() = 0;
  // Resumes, on the service's thread, the migrations whose specs are in `dir`, unless they
  // completed or were cancelled. The stores they name may appear later (config order): it
  // retries for a few seconds, and any operation on a migration not resumed yet resumes it.
  virtual void ResumeFromDisk() = 0;
};

std::shared_ptr<MigratorService> MakeMigratorService(MigratorServiceOptions options);

}  // namespace shardkit::migrate
