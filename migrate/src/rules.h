// The rules a migration with a new id must pass before anything is created, cleared or copied
// (docs/migration.md, "Sources, targets and ids"). A refusal is `invalid`, names the store and the
// reason, and changes nothing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/migrate/migration.h>

#include "journal.h"

namespace shardkit::migrate::internal {

// Sources: shards of `map`, not used by another migration. Targets: not a source, not routed to
// by `map` (by name, owner tag included), not used by another migration, empty (no entity, no
// change-feed record, no replicated position).
Status CheckNewMigration(const MigrationSpec& spec, const shard::ShardMap& map);

// Claims every store of `spec` for spec.id. If one refuses (another migration claimed it
// meanwhile), the claims taken here are released and the answer names that store.
Status ClaimStores(const MigrationSpec& spec);
// Releases spec.id's claims (complete, cancel).
Status ReleaseStores(const MigrationSpec& spec);

// The one place the migrator deletes data: `range` of a target that its journal records as a
// fresh target of this migration, that this migration claims and the map does not route to,
// while the copy is not done. Anything else is refused: a mistake elsewhere cannot empty a
// store that serves.
Status ClearFreshTarget(const MigrationSpec& spec, const JournalState& state,
                        const Participant& target, const store::KsidRange& range,
                        const std::string& stream);

// The other delete, run by `cleanup` after `complete`: the sources' copies of the moved range.
// Refused (nothing deleted), naming the source, while the map routes to a source, a feed consumer
// still reads one, or a migration claims one. Deletes in batches (each one atomic write, marked
// replicated in the source's feed); returns how many entities went.
Result<uint64_t> DeleteSourceCopies(const MigrationSpec& spec,
                                    const std::map<std::string, store::KsidRange>& ranges);

// The shard names of `participants`, in order.
std::vector<std::string> Names(const std::vector<Participant>& participants);

}  // namespace shardkit::migrate::internal
