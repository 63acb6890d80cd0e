// Projection: the read side of CQRS. A projection turns each event of a source (the command log or
// a store's change feed) into writes to its read model, and answers queries from that read model.
//
// A projection is pure logic over a key-value read model: it never writes itself. The runner
// (projection_service.h) applies a batch of events, collects their writes and commits them in ONE
// RocksDB write together with the checkpoint (the last applied position), so after a crash the read
// model is exactly the state after some prefix of the events: nothing applied twice, nothing
// skipped.
//
// Thread-safety: Apply is called from the runner thread only, one event at a time, in position
// order. Query may run concurrently with Apply and with other queries (it sees committed state).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/message.h>
#include <shardkit/message/status.h>

namespace shardkit::cqrs {

enum class EventOp : uint8_t {
  kSave,    // an entity was saved: `value` is the entity (JSON object text)
  kRemove,  // an entity was removed (or expired): `value` is empty
  kOther,   // a domain command from the command log: see `command`
};

struct Event {
  uint64_t position = 0;  // command log position or change feed sequence
  EventOp op = EventOp::kOther;
  std::string kind;
  std::string id;
  std::string value;
  std::string command;  // command log sources: the whole command message (JSON); else empty
};

// One read-model write: a put, or a delete when `value` is nullopt.
struct Write {
  std::string key;
  std::optional<std::string> value;
};

// The read model as Apply sees it: committed state plus the writes of earlier events of the batch.
class StateView {
 public:
  virtual ~StateView() = default;
  // The value at `key`, nullopt when absent; `internal` if the engine fails.
  virtual Result<std::optional<std::string>> Get(std::string_view key) const = 0;
};

// The read model as queries see it (committed state).
class ReadView : public StateView {
 public:
  // Visits keys starting with `prefix`, in byte order, beginning after `after` (a full key; empty:
  // from the first), until `visit` returns false.
  virtual Status Scan(
      std::string_view prefix, std::string_view after,
      const std::function<bool(std::string_view key, std::string_view value)>& visit) const = 0;
};

class Projection {
 public:
  virtual ~Projection() = default;
  // Names the projection in status and logs.
  virtual std::string name() const = 0;
  // The read-model writes for one event (often none: events it does not care about). An error is
  // logged and counted and the event is skipped (a projection bug must not stop the read model).
  virtual Result<std::vector<Write>> Apply(const Event& event, const StateView& state) = 0;
  // Answers a query routed to this projection (the runner has already handled min_position and
  // timeout_ms). Unknown queries answer `invalid`.
  virtual Result<Message> Query(const Message& query, const ReadView& view) = 0;
};

}  // namespace shardkit::cqrs
