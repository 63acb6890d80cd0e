// Migration: a live split, merge or replace of shards, with zero downtime.
//
// One workflow moves the data of `sources` to `targets` while clients keep reading and writing:
// split (1 -> 2), merge (2 adjacent -> 1) or replace (1 -> 1, e.g. RocksDB -> SQLite or to another
// node). The targets together must own exactly the sources' ranges, and each target must be a
// fresh store nothing routes to (docs/migration.md). Phases, each recorded in a durable journal
// before it takes effect:
//
//   copy      targets are filled from a scan of the sources (leftovers of an interrupted copy are
//             cleared first, the migrator's only delete, of its own fresh targets); the
//             sources' feed position P0 is read first and registered as a feed consumer, so no
//             change after P0 can be trimmed before it is replicated
//   catch-up  one replicator per (source, target) tails the source feed from P0, filtered to the
//             target's range, applying changes verbatim with the applied position recorded in
//             the same atomic write (exactly once across crashes)
//   verify    key-ordered diff of sources vs targets; keys written during the diff are re-checked
//   cutover   lag check; the sources' write gates close (new writes wait, they do not fail);
//             in-flight writes drain; the fence Pf is read; the targets must reach Pf within the
//             timeout, else the gates reopen and nothing is lost; the shard map is swapped to
//             epoch+1 by compare-and-swap (the point of no return); the source gates retire, so
//             held writes answer wrong_shard and routers resend them to the targets
//   reverse   after cutover, targets replicate back to the sources, so `Rollback` can return the
//             range to the sources (a cutover in the other direction) until `Complete`. Each
//             direction starts at the new owners' feed positions recorded at the swap: what the
//             feed held before is the migration's own traffic and is never replicated back
//   complete  replication stops, feed consumers are removed; the sources' copies of the range are
//             kept ("source data is untouched") until `Cleanup` deletes them
//
// Every step is idempotent; Open() on an existing journal resumes: replicators restart from the
// positions stored with the receiving stores' data, an interrupted cutover or rollback is
// finished (map already swapped) or undone (gates reopened).
//
// Thread-safety: one thread drives a Migration (its methods are not concurrent); replicators run
// on their own threads; progress() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/write_gate.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::migrate {

struct Participant {
  std::string shard;  // the range it owns (sources) or will own
  std::shared_ptr<store::EntityStore> store;
  std::shared_ptr<shard::WriteGate> gate;  // the gate of this shard's guard
  // Empty: the store is in this process. Else the URL of the node serving it; `store` then
  // speaks the replication protocol to it (store/replication.h) and `gate` throws the gate of the
  // shard's guard on that node (a cutover closes a source's there, a rollback a target's).
  std::string node;
  // A remote participant's: the id of the process answering for it there (its guard's `boot`),
  // empty when unknown. A cluster's nats:// URL reaches every node of the cluster, so two
  // participants with one `node` are on one process only when these match.
  std::string process;
};

struct CutoverOptions {
  uint64_t max_lag = 10'000;                       // records behind, checked first
  std::chrono::milliseconds drain_timeout{2'000};  // in-flight writes at the sources
  std::chrono::milliseconds fence_timeout{2'000};  // targets reaching the fence
};

struct Progress;

struct MigrationSpec {
  std::string id;  // names the journal, feed consumers and streams
  std::vector<Participant> sources;
  std::vector<Participant> targets;
  std::shared_ptr<shard::ShardMapHolder> map;  // the authoritative map, swapped at cutover
  std::string journal_path;                    // a file; its directory must exist
  CutoverOptions cutover;
  size_t copy_batch = 1000;
  // The copy's ceiling in rows per second, so that it does not starve clients; 0: none.
  uint64_t max_rows_per_s = 0;
  // Called after every phase change (once the journal has it) and during the copy at most every
  // 250 ms. On the thread doing the work; must not block.
  std::function<void(const Progress&)> on_progress;
};

enum class Phase { kCreated, kCopied, kCutover, kCutoverDone, kRolledBack, kCompleted, kCancelled };
std::string_view PhaseName(Phase phase);

struct Progress {
  Phase phase = Phase::kCreated;
  uint64_t rows_to_copy = 0;  // the sources' entity count in the range, counted before the copy
  uint64_t rows_copied = 0;
  double copy_rows_per_s = 0;
  uint64_t lag = 0;    // records the slowest replicator is behind its source
  uint64_t epoch = 0;  // of the shard map
};

struct VerifyReport {
  uint64_t compared = 0;
  uint64_t missing = 0;    // in a source, not in the targets
  uint64_t extra = 0;      // in a target, not in the sources
  uint64_t different = 0;  // in both with another version or value
  uint64_t in_flux = 0;    // differed, but written during the diff
  bool ok() const { return missing == 0 && extra == 0 && different == 0; }
};

struct CutoverReport {
  double pause_ms = 0;  // from closing the gates to retiring them
  uint64_t fence = 0;   // Pf of the (first) source
  uint64_t epoch = 0;   // the new map epoch
};

// `conflict` unless `sources` and `targets` are the shards recorded for migration `id` (in any
// order): the message and details show the recorded spec.
Status CheckSameSpec(std::string_view id, std::vector<std::string> recorded_sources,
                     std::vector<std::string> recorded_targets, std::vector<std::string> sources,
                     std::vector<std::string> targets);

class Migration {
 public:
  // Validates the spec (ranges: targets must own exactly the sources' ranges) and creates or
  // resumes the workflow from its journal. A new id (no journal) must pass the rules of
  // docs/migration.md ("Sources, targets and ids") and claims its stores; an existing id must
  // name the shards it was started with (else `conflict`) and resumes from its recorded phase.
  static Result<std::unique_ptr<Migration>> Open(MigrationSpec spec);
  ~Migration();

  // copy (if not done), then start the replicators. Idempotent.
  Status Start();
  Result<VerifyReport> Verify();
  // Cutover and Rollback answer the current state when already done (a repeated command).
  Result<CutoverReport> Cutover();
  // After cutover, before complete: the range goes back to the sources.
  Result<CutoverReport> Rollback();
  // After a cutover only (refused when rolled back: the map routes to the sources).
  Status Complete();
  // Before cutover or after a rollback: stop, drop consumers, release the stores' claims; the
  // sources keep serving; targets keep what they copied (unused). Deletes nothing.
  Status Cancel();
  // After `complete`: deletes the sources' copies of the moved range; how many entities went.
  // Refused while the map routes to a source, a feed consumer reads one or a migration claims one.
  Result<uint64_t> Cleanup();

  Progress progress() const;
  Phase phase() const;
  // Waits until every replicator is within `lag` records of its source; false on timeout.
  bool WaitForLag(uint64_t lag, std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  explicit Migration(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardkit::migrate
