// Where a migration's participants are: each source and target is a store of this process, or,
// when the start's `nodes` names it, a store of another node reached by the replication protocol
// (a remote source is read, fenced and retired there; a remote target is filled there). With
// every participant remote, the coordinator runs on a node of its own.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <shardkit/message/message.h>
#include <shardkit/migrate/migration.h>
#include <shardkit/migrate/service.h>

namespace shardkit::migrate::internal {

// The `nodes` of a start: shard (a source or a target) -> URL of the node serving it.
Result<std::map<std::string, std::string>> ParseNodes(const Message& m);

struct Placed {
  std::vector<Participant> sources;
  std::vector<Participant> targets;
};

// Looks every participant up (remote ones connected): `invalid` naming the shard, and for a
// remote one its node, when a store is missing or its node unreachable, when `nodes` names a
// shard that is neither a source nor a target, or when a target's node serves a source (a move
// to the node that owns the range moves nothing).
Result<Placed> PlaceParticipants(const std::vector<std::string>& sources,
                                 const std::vector<std::string>& targets,
                                 const std::map<std::string, std::string>& nodes,
                                 const MigratorServiceOptions& find);

}  // namespace shardkit::migrate::internal
