// IdGenerator: synthetic 64-bit, time-ordered entity ids, unique per node, rendered as decimal
// strings (no random GUIDs: they scatter inserts over the key space and hurt index locality).
//
// Layout, most significant bit first:
//   1 bit zero | 41 bits milliseconds since 2015-01-01T00:00:00Z | 10 bits node id | 12 bits
//   sequence
// 41 bits of milliseconds last until 2084. Ids generated from mid-2022 to 2084 all have 19 decimal
// digits, so comparing them as strings gives the same order as comparing them as numbers.
//
// Guarantees: every id returned by one generator is strictly greater than the one before, even if
// the clock steps back (the generator keeps using its last timestamp) or more than 4096 ids are
// asked for in one millisecond (it borrows the next millisecond). Two generators with different
// node ids never return the same id. Uniqueness across process restarts relies on the clock not
// stepping back across the restart.
//
// Thread-safety: Next() and NextId() may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <shardkit/message/clock.h>

namespace shardkit::store {

class IdGenerator {
 public:
  static constexpr int64_t kEpochMs = 1'420'070'400'000;  // 2015-01-01T00:00:00Z
  static constexpr uint32_t kMaxNodeId = 1023;

  // `clock` must outlive the generator; nullptr means SystemClock::Default(). Throws
  // std::invalid_argument if node_id > kMaxNodeId (a configuration error, found at start-up).
  explicit IdGenerator(uint32_t node_id, const Clock* clock = nullptr);

  IdGenerator(const IdGenerator&) = delete;
  IdGenerator& operator=(const IdGenerator&) = delete;

  // The next id as a number.
  uint64_t Next();
  // The next id as a decimal string (what entities carry in "id").
  std::string NextId() { return std::to_string(Next()); }

  uint32_t node_id() const { return node_id_; }

 private:
  const uint32_t node_id_;
  const Clock* const clock_;
  std::mutex mu_;
  int64_t last_ms_ = 0;    // guarded by mu_: the timestamp of the last id (ms since kEpochMs)
  uint32_t sequence_ = 0;  // guarded by mu_: the sequence of the last id within last_ms_
};

}  // namespace shardkit::store
