// The durable journal of one migration: its phase and the positions each phase recorded.
// Written whole to a temp file, fsynced and renamed over the old one: after a crash it is either
// the old state or the new one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/crash_point.h>
#include <shardkit/message/status.h>
#include <shardkit/migrate/migration.h>

namespace shardkit::migrate::internal {

struct JournalState {
  Phase phase = Phase::kCreated;
  // The spec the id was started with (canonical shard names): the same id with another spec is
  // refused. Empty in journals written before the spec was recorded.
  std::vector<std::string> sources;
  std::vector<std::string> targets;
  // Targets this migration found fresh (empty, unrouted, unclaimed) and claimed: the only stores
  // whose range it may ever clear.
  std::vector<std::string> fresh_targets;
  bool back = false;                      // the switch in progress (phase cutover) is a rollback
  uint64_t epoch_before = 0;              // map epoch when the cutover started
  uint64_t epoch_after = 0;               // map epoch the cutover installed
  std::map<std::string, uint64_t> p0;     // source shard -> feed position at copy
  std::map<std::string, uint64_t> fence;  // source shard -> Pf
  // New owner -> its feed position at the last swap (targets after a cutover, sources after a
  // rollback): the replication the other way starts there.
  std::map<std::string, uint64_t> reverse_from;
};

Result<JournalState> ReadJournal(const std::string& path);  // not_found if absent
// The journal's text as ReadJournal reads it; `path` names it in errors (`internal`, "corrupt").
Result<JournalState> ParseJournal(std::string_view text, const std::string& path);
Status WriteJournal(const std::string& path, const JournalState& state);

using ::shardkit::CrashPoint;  // the migration's crash points (docs/migration.md)

}  // namespace shardkit::migrate::internal
