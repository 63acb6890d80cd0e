#include <shardkit/store/id_generator.h>

#include <algorithm>
#include <stdexcept>

namespace shardkit::store {
namespace {
constexpr int kSequenceBits = 12;
constexpr int kNodeBits = 10;
constexpr uint32_t kMaxSequence = (1u << kSequenceBits) - 1;
}  // namespace

IdGenerator::IdGenerator(uint32_t node_id, const Clock* clock)
    : node_id_(node_id), clock_(clock != nullptr ? clock : &SystemClock::Default()) {
  if (node_id > kMaxNodeId) {
    throw std::invalid_argument("IdGenerator: node id " + std::to_string(node_id) + " is above " +
                                std::to_string(kMaxNodeId));
  }
}

uint64_t IdGenerator::Next() {
  const int64_t now = std::max<int64_t>(0, clock_->NowMs() - kEpochMs);
  std::lock_guard lock(mu_);
  if (now > last_ms_) {
    last_ms_ = now;
    sequence_ = 0;
  } else if (sequence_ < kMaxSequence) {
    ++sequence_;  // same millisecond, or the clock stepped back: keep the last timestamp
  } else {
    ++last_ms_;  // 4096 ids in one millisecond: borrow the next one
    sequence_ = 0;
  }
  return (static_cast<uint64_t>(last_ms_) << (kNodeBits + kSequenceBits)) |
         (static_cast<uint64_t>(node_id_) << kSequenceBits) | sequence_;
}

}  // namespace shardkit::store
