// The replication protocol: how a live migration on one node fills a store on another
// (docs/migration.md, "Targets on other nodes"). Two messages, answered by the store service:
//
//   store:replicate    v:1 stream:S position:P changes:[…] [assume_absent:true]  -> {"position":P}
//       EntityStore::ApplyReplicated(S, changes, P, assume_absent): the changes and the applied
//       position in one atomic write, so a restarted stream resumes exactly after P.
//   store:replication  v:1 [stream:S] [claim:O | release:O] [scan:{begin,end,after,limit}]
//       -> {"v":1,"last":L,"claimant":C,"streams":{…},"position":P?,"records":[…]?,"more":B?}
//       The store's replication state (feed head, claim, streams), after taking or dropping the
//       migration claim of owner O if asked; `scan` pages through the live entities of a ksid
//       range (hex bounds) after the key `after` ([kind,ksid,id]).
//       [feed:{from,limit}] -> "feed":[…]: the feed's records from `from` (reverse replication
//       from this store, for a rollback); [consumer:{name,op,position}] registers, advances or
//       removes that reader's feed consumer first; the reply lists "consumers".
//   store:replication gate:close|open|retire|state (answered by the shard's guard): throws the
//       shard's write gate, replying "gate", "in_flight" and the process's "boot" id.
//
// A change travels as [ksid_hex, kind, id, op, version, expires_at_ms, value or null]; a scanned
// entity as [ksid_hex, kind, id, version, expires_at_ms, value]; a feed record as [seq,
// replicated, <the change's seven fields>]. `v` is the protocol version: a
// store refuses one it does not speak (`invalid`, field v), so nodes of different releases never
// misread each other's batches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/message.h>
#include <shardkit/message/status.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::store {

inline constexpr uint64_t kReplicationProtocol = 1;

// The `changes` array of a store:replicate.
std::string ChangesToReplicationJson(const std::vector<ChangeRecord>& changes);
Result<std::vector<ChangeRecord>> ChangesFromReplicationJson(std::string_view json);
// The `feed` array of a store:replication feed read.
std::string FeedToReplicationJson(const std::vector<ChangeRecord>& records);
Result<std::vector<ChangeRecord>> FeedFromReplicationJson(std::string_view json);
// The `records` array of a store:replication scan.
Result<std::vector<EntityRecord>> RecordsFromReplicationJson(std::string_view json);

// The two operations over `store` (the store service calls them).
Result<Message> ServeReplicate(EntityStore& store, const Message& m);
Result<Message> ServeReplicationState(EntityStore& store, const Message& m);

}  // namespace shardkit::store
