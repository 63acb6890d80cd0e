// CommandLog: the durable, ordered log of accepted commands (RocksDB), with group commit,
// command-id de-duplication, checkpoints of its consumers and a dead-letter log.
//
// Positions start at 1, are contiguous and never reused. Every append goes through one writer
// thread: the appends waiting when it wakes become ONE RocksDB write batch (and, with
// Durability::kSync, one fsync), so many concurrent clients cost few writes ("group commit").
// Durability (store/options.h): kSync fsyncs every batch before acknowledging; kGroup acknowledges
// once the batch is in the OS page cache and fsyncs the WAL every `group_sync_interval_ms` (a
// process crash loses nothing acknowledged); kNone never fsyncs.
//
// A command carries an optional client command id. An id already in the log is not appended again:
// its append answers the ORIGINAL position with `duplicate = true` (also across restarts, also for
// two appends of one id inside one batch). Appends without an id get the generated id "@<position>"
// and are never de-duplicated; client ids must therefore not start with '@'.
//
// On-disk layout (one RocksDB, default column family):
//   L pos(8 BE)   -> id_len(4 BE) id key_len(4 BE) key json      the command
//   I id          -> pos(8 BE)                                    client id -> position
//   D pos(8 BE)   -> attempts(4 BE) error_len(4 BE) error <command as under L>   dead letter
//   M name        -> value(8 BE)                                  consumer checkpoints
//
// Thread-safety: every method may be called from any thread. Append callbacks run on the writer
// thread: they must not block (a bus reply is fine).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/status.h>
#include <shardkit/store/options.h>

namespace shardkit::cqrs {

struct CommandLogOptions {
  std::string path;  // directory of the log (created if missing)
  store::Durability durability = store::Durability::kGroup;
  int group_sync_interval_ms = 5;  // kGroup: WAL fsync period
  size_t max_batch = 4096;         // most commands in one group commit
  size_t max_queue = 200'000;      // appends waiting for the writer; beyond: `overloaded`
};

// One logged command.
struct LoggedCommand {
  uint64_t position = 0;
  std::string command_id;  // the client's id, or "@<position>"
  std::string key;         // ordering key: commands of one key are applied in position order
  std::string json;        // the command message (codec.h ToJson), without meta$
};

struct AppendResult {
  uint64_t position = 0;
  std::string command_id;
  bool duplicate = false;  // the id was already logged; position is the original one
};
using AppendCallback = std::function<void(Result<AppendResult>)>;

struct DeadLetter {
  LoggedCommand command;  // command.position is where it was logged
  std::string error;      // the last error (Status::ToString)
  uint32_t attempts = 0;
};

// Where a replayed dead letter went.
struct Replayed {
  uint64_t from = 0;      // its old position
  uint64_t position = 0;  // its new position
};

class CommandLog {
 public:
  // Opens (creating if needed) the log in options.path and starts its writer thread. Errors:
  // `invalid` path, `internal` when RocksDB cannot open it.
  static Result<std::unique_ptr<CommandLog>> Open(const CommandLogOptions& options);
  // Stops the writer; appends still queued are answered `unavailable`.
  virtual ~CommandLog() = default;

  // Queues one command; `done` is called once with its position (or an error: `overloaded` when
  // the queue is full, `invalid` for an id starting with '@', `unavailable` after shutdown,
  // `internal` if RocksDB fails). `command_id` empty: generated, never de-duplicated.
  virtual void Append(std::string command_id, std::string key, std::string json,
                      AppendCallback done) = 0;

  // Up to `limit` commands with position >= from, in order.
  virtual Result<std::vector<LoggedCommand>> Read(uint64_t from, size_t limit) const = 0;
  // The last position written (0 for an empty log).
  virtual uint64_t Head() const = 0;

  // `wake` is called (on the writer thread, must not block) after every write that moved Head().
  // Returns an id for RemoveListener, which waits for a running call to finish.
  virtual uint64_t AddListener(std::function<void()> wake) = 0;
  virtual void RemoveListener(uint64_t id) = 0;

  // Named 64-bit values of the log's consumers (applied positions); 0 when never written.
  // PutMeta writes several at once, atomically.
  virtual Result<uint64_t> GetMeta(std::string_view name) const = 0;
  virtual Status PutMeta(const std::vector<std::pair<std::string, uint64_t>>& values) = 0;

  // --- Dead letters -------------------------------------------------------------------------
  // Records (or overwrites) the dead letter of command.position.
  virtual Status AddDeadLetter(const DeadLetter& letter) = 0;
  // Up to `limit` dead letters with position >= from, in order.
  virtual Result<std::vector<DeadLetter>> ListDeadLetters(uint64_t from, size_t limit) const = 0;
  // Appends the dead letters at `positions` again (in position order, with fresh positions and
  // their original command ids, bypassing de-duplication) and deletes them, in one write.
  // `not_found` if one of them is not a dead letter (then nothing changes).
  virtual Result<std::vector<Replayed>> ReplayDeadLetters(std::vector<uint64_t> positions) = 0;
};

}  // namespace shardkit::cqrs
