// ProjectionService: runs one Projection over one EventSource into its own RocksDB read model, and
// serves the projection's queries as a Handler.
//
// Runner: one thread reads events after the checkpoint in batches (`batch_size`), calls
// Projection::Apply for each, and commits all their writes plus the new checkpoint in ONE RocksDB
// write (fsynced with Durability::kSync). Restarting on the same directory continues after the
// checkpoint: a crash never applies an event twice nor skips one.
//
// Queries: any message routed to the service is a query for Projection::Query, with two optional
// properties handled here first (read-your-writes):
//   min_position:P   answer only once the read model has applied position P (a command's
//                    `position` from its ack, for command-log sources)
//   timeout_ms:T     how long to wait for that (default `default_timeout_ms`, at most
//                    `max_timeout_ms`, and never past the message's meta$.deadline); then `timeout`
//                    with details {"applied":A,"min_position":P}
// Waiting never blocks the caller's thread: the reply comes from the runner thread.
//
// Rebuild: start a second service with a fresh `path` over the same source (it starts at position
// 0), wait until it has caught up (WaitApplied), then SwapRoutes the query patterns to it; queries
// in flight finish on the old instance (the old routing snapshot keeps it alive), new ones go to
// the new one, so no query fails. Stop the old one afterwards.
//
// Thread-safety: Handle, Lag, applied and WaitApplied may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <shardkit/cqrs/command_log.h>
#include <shardkit/cqrs/projection.h>
#include <shardkit/cqrs/status.h>
#include <shardkit/message/bus.h>
#include <shardkit/store/options.h>

namespace shardkit::cqrs {

// Where a projection's events come from.
class EventSource {
 public:
  virtual ~EventSource() = default;
  // Up to `limit` events with position >= from (from >= 1), in order.
  virtual Result<std::vector<Event>> Read(uint64_t from, size_t limit) = 0;
  // The last position known to exist.
  virtual uint64_t Head() const = 0;
  // `wake` (non-blocking) is called when new events may exist; the runner also reads every
  // poll_interval_ms() without one (0: never; a safety net for sources that wake).
  virtual void SetWake(std::function<void()> wake) = 0;
  virtual int64_t poll_interval_ms() const = 0;
  // For a source whose older events are gone (Read answered not_found): whether it can give the
  // current state instead, and Snapshot(), which passes that state to `apply` as kSave events
  // (position 0) in batches and returns the position to read on after (events after it may
  // repeat what the state already holds).
  virtual bool has_snapshot() const { return false; }
  using ApplySnapshot = std::function<Status(const std::vector<Event>&)>;
  virtual Result<uint64_t> Snapshot(const ApplySnapshot& apply) {
    (void)apply;
    return Status::Internal("this event source has no snapshot");
  }
};

// Events from a command log: store:save -> kSave (value = ent, with the id the command service
// gave it), store:remove -> kRemove, anything else -> kOther with `command`. These are ACCEPTED
// commands: a command the applier later dead-letters has still been projected.
std::unique_ptr<EventSource> MakeCommandLogSource(std::shared_ptr<CommandLog> log);

// Events from a store's change feed, read by message: `request` plus from/limit (e.g.
// {"store":"changes"} or with routing properties that reach one store). save -> kSave (value =
// stored entity), remove and expire -> kRemove. Once caught up, the source leaves one long-poll
// open (store:changes with `wait_ms`, docs/messages.md) whose answer wakes the runner as soon as
// the store commits a record; `poll_interval_ms` is the least time between two reads when the
// store answers without waiting (an older node) or fails. `bus` must outlive the source. When the
// feed was trimmed past the projection, a `request` naming a `kind` gives a snapshot: the last
// sequence, then every entity of the kind by store:list pages (same routing properties).
std::unique_ptr<EventSource> MakeChangeFeedSource(Bus& bus, Message request,
                                                  int64_t poll_interval_ms = 5,
                                                  int64_t wait_ms = 10'000);

struct ProjectionOptions {
  std::string path;  // the read model's RocksDB directory (created if missing)
  store::Durability durability = store::Durability::kGroup;
  size_t batch_size = 1024;
  int64_t default_timeout_ms = 5'000;
  int64_t max_timeout_ms = 60'000;
  // Called on the runner thread after each commit with the new applied position (metrics, benches).
  std::function<void(uint64_t applied)> on_applied;
};

class ProjectionService : public Handler, public LagSource {
 public:
  // Opens the read model and reads its checkpoint; reads no event until Begin() (a node calls it
  // once its routes are in place: a change-feed source reads by message). Errors: `invalid`
  // options, `internal` if RocksDB cannot open the directory.
  static Result<std::shared_ptr<ProjectionService>> Open(std::unique_ptr<Projection> projection,
                                                         std::unique_ptr<EventSource> source,
                                                         ProjectionOptions options);
  // Open() then Begin().
  static Result<std::shared_ptr<ProjectionService>> Start(std::unique_ptr<Projection> projection,
                                                          std::unique_ptr<EventSource> source,
                                                          ProjectionOptions options);
  // Starts the runner thread. Idempotent; does nothing after Stop().
  virtual void Begin() = 0;
  // Stops the runner (queries still waiting answer `unavailable`); queries without a wait are
  // still served from the read model. Idempotent; the destructor calls it.
  virtual void Stop() = 0;
  // The checkpoint: every event at or below it is in the read model.
  virtual uint64_t applied() const = 0;
  // Blocks until applied() >= position; false after `timeout`. For tools, tests and rebuilds.
  virtual bool WaitApplied(uint64_t position, std::chrono::milliseconds timeout) = 0;
};

// Routes every pattern of `patterns` to `handler` in one atomic table change, replacing the routes
// already there (their overrides included). `invalid` for a bad pattern (nothing changes).
Status SwapRoutes(Bus& bus, const std::vector<std::string>& patterns,
                  std::shared_ptr<Handler> handler, std::string description = {});

}  // namespace shardkit::cqrs
