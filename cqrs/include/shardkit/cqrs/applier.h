// Applier: takes commands from a CommandLog in order and applies them to their target by message.
//
// Routing: a logged command is sent through the bus as itself plus the `mark` properties (default
// `cqrs:apply`), so `store:save,kind:entry` is applied as `store:save,kind:entry,cqrs:apply`. The
// target store is routed at `store:*,kind:entry,cqrs:apply`; the command service keeps
// `store:save,kind:entry` and `store:remove,kind:entry` (more specific than any `store:*` route),
// and reads keep going wherever they went. The mark also keeps an applied command from being
// routed back into the command service.
//
// Ordering: commands of one key (command_service.h) are applied one at a time, in position order;
// commands of different keys run concurrently (up to `max_in_flight`). A failure is retried with
// exponential backoff (`initial_backoff_ms` doubling up to `max_backoff_ms`) while later commands
// of the SAME key wait; other keys go on. `no_route` (nothing answers the target yet, e.g. a node
// still starting) is retried without spending an attempt and never makes a dead letter: dead
// letters are for commands the target refuses. `invalid` and `conflict` answers are not retried.
// After `max_attempts` (or at once for those) the command moves to the dead-letter log with its
// error, and its key is parked: later commands of that key are dead-lettered too ("blocked by the
// dead letter at position P"), so a key's commands are never applied out of order. Replay appends a
// key's dead letters again, in order, and unparks it. A `store:remove` answered `not_found` counts
// as applied (the entity is absent either way).
//
// Guarantee (exactly-once in effect for store:save / store:remove targets): the applied position
// (every command at or below it is applied or dead-lettered) and the highest position ever sent
// are checkpointed in the log's DB. After a crash, commands above the applied position and at or
// below the highest sent one are "in doubt"; so is a command whose attempt timed out. For an
// in-doubt save the applier first loads the entity and skips the save if its `stamp_field`
// (default "cqrs$position", written into every applied entity) is >= the command's position —
// per-key order makes that proof that it was applied. An in-doubt remove is idempotent. Domain
// commands (not store:*) are delivered at least once; they carry their `command_id`, by which a
// target can de-duplicate. With an empty `stamp_field`, store commands are at-least-once too
// (same final entity, but a replayed save bumps its version).
//
// Threads: Begin() (or Start() = Open() + Begin()) runs one applier thread; Stop() (or the
// destructor) joins it. A node opens its applier while it builds its services and calls Begin()
// only once its routing table and outgoing links are in place (docs/architecture.md, "Start and
// stop order"). Replies may
// come on any thread. Only one applier may consume one log (it owns the dead-letter log).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <shardkit/cqrs/command_log.h>
#include <shardkit/cqrs/status.h>
#include <shardkit/message/bus.h>

namespace shardkit::cqrs {

struct ApplierOptions {
  std::string name = "applier";  // names its checkpoints in the log and its status
  std::vector<std::pair<std::string, std::string>> mark = {{"cqrs", "apply"}};
  std::string stamp_field = "cqrs$position";
  uint32_t max_attempts = 5;
  int64_t initial_backoff_ms = 10;
  int64_t max_backoff_ms = 2'000;
  int64_t reply_timeout_ms = 10'000;  // an unanswered attempt counts as failed (and in doubt)
  size_t max_in_flight = 256;         // attempts sent and not answered
  size_t max_buffered = 8'192;        // commands read from the log and not finished
};

class Applier : public LagSource {
 public:
  // Reads its checkpoints and the dead letters; sends nothing until Begin(). `bus` must outlive
  // the applier. Errors: `invalid` options, `internal` if the log cannot be read.
  static Result<std::shared_ptr<Applier>> Open(std::shared_ptr<CommandLog> log, Bus& bus,
                                               ApplierOptions options);
  // Open() then Begin().
  static Result<std::shared_ptr<Applier>> Start(std::shared_ptr<CommandLog> log, Bus& bus,
                                                ApplierOptions options);
  virtual ~Applier() = default;

  // Starts the applier thread. Idempotent; does nothing after Stop().
  virtual void Begin() = 0;

  // Stops the thread; attempts in flight are abandoned (in doubt at the next start). Idempotent.
  virtual void Stop() = 0;

  // Replays dead letters: with `position`, every dead letter of that position's key (a key's
  // letters go back together, in order); without, all of them. `done` receives where each went
  // (`not_found` if `position` is not a dead letter). Runs on the applier thread.
  virtual void Replay(std::optional<uint64_t> position,
                      std::function<void(Result<std::vector<Replayed>>)> done) = 0;

  // Every position <= this is applied or dead-lettered.
  virtual uint64_t applied() const = 0;
};

// cqrs:deadletter,cmd:list [from:P] [limit:N]  -> {"items":[{"position","command_id","key",
//                                                   "attempts","error","command":{…}}…]}
// cqrs:deadletter,cmd:replay [position:P]       -> {"replayed":[{"from":P,"position":N},…]}
// (`key` is shown with its NUL separator as '/'.) Bad input answers `invalid` naming the field.
std::shared_ptr<Handler> MakeDeadLetterService(std::shared_ptr<CommandLog> log,
                                               std::shared_ptr<Applier> applier);

}  // namespace shardkit::cqrs
