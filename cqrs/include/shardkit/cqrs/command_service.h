// CommandService: the write side of CQRS. Configured write patterns route to it (for example
// `store:save,kind:entry`, `store:remove,kind:entry`, `post:entry`); it appends each command to the
// CommandLog and acknowledges as soon as the command is durable in the log — before it is applied.
//
//   request  any routed command, optionally with a top-level string `command_id` (the client's
//            idempotency key: non-empty, at most 256 bytes, not starting with '@')
//   reply    {"command_id":"…","position":N[,"id":"…"][,"duplicate":true]}
//
// A command id already in the log is answered with its original position and `duplicate:true`
// and is not logged again, so it is applied once. Without `command_id` the log generates
// "@<position>" (never de-duplicated).
//
// Commands are checked before anything is written; bad input answers `invalid` naming the field:
//   store:save    needs `ent` (an object; no bulk `ents`); `id` and `ent.id`, if given, are strings
//                 and agree. A save without an id gets one now (IdGenerator, `node_id`), written
//                 into `ent.id` and returned as `id`, so applying the command again after a crash
//                 addresses the same entity. Ordering key: kind + id.
//   store:remove  needs a string `id` (removal by query is not a command). Ordering key: kind + id.
//   store:<other> `store` must be save or remove (reads are not commands).
//   anything else a domain command, logged as is. Ordering key: the top-level `key_field`
//                 (default "id") if it is a string or number, else "" (one shared order).
// The logged text is the message without meta$ (a replay must not inherit an old deadline).
//
// Thread-safety: Handle may be called from any thread; it never blocks (the reply comes from the
// log's writer thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <shardkit/cqrs/command_log.h>
#include <shardkit/message/clock.h>
#include <shardkit/message/handler.h>

namespace shardkit::cqrs {

struct CommandServiceOptions {
  uint32_t node_id = 0;  // of the IdGenerator giving ids to saves without one (0..1023)
  std::string key_field = "id";
  const Clock* clock = nullptr;  // nullptr: SystemClock::Default()
  // The applier's mark (ApplierOptions::mark). A message carrying it is a command being applied
  // whose target has no route, so it fell back to this service: answered `no_route` (the applier
  // waits and sends it again), never logged a second time.
  std::vector<std::pair<std::string, std::string>> applied_mark = {{"cqrs", "apply"}};
};

// What the service logs for one message: its ordering key and text, or `invalid`.
struct CommandPlan {
  std::string command_id;
  std::string key;
  std::string json;
  std::string entity_id;  // store:* commands: the entity id
};

// The checks and rewrites described above, without logging (shared with tests and tools).
// `new_id` gives an id to a save without one.
Result<CommandPlan> PlanCommand(Message message, const std::string& key_field,
                                const std::function<std::string()>& new_id);

// The handler. Throws std::invalid_argument for node_id > 1023 (a start-up error).
std::shared_ptr<Handler> MakeCommandService(std::shared_ptr<CommandLog> log,
                                            CommandServiceOptions options = {});

}  // namespace shardkit::cqrs
