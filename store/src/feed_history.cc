#include "feed_history.h"

#include <algorithm>
#include <iterator>

namespace shardkit::store::internal {

namespace {
// Per record beyond kind, id and value: the sequence key, op, ksid, version, lengths, expiry.
constexpr uint64_t kRecordOverhead = 48;
// Samples kept at most (a day of 1 s rounds fits): ~24 bytes each.
constexpr size_t kMaxPoints = 1 << 17;
}  // namespace

FeedHistory::FeedHistory(uint64_t first, uint64_t last, uint64_t bytes, int64_t now_ms)
    : appended_(bytes) {
  points_.push_back({first - 1, now_ms, 0});
  if (last >= first) points_.push_back({last, now_ms, bytes});
}

uint64_t FeedHistory::BytesOf(const ChangeRecord& record) {
  return record.kind.size() + record.id.size() + record.value.size() + kRecordOverhead;
}

void FeedHistory::Sample(uint64_t last, int64_t now_ms) {
  if (last <= points_.back().sequence) return;
  points_.push_back({last, now_ms, appended_});
  if (points_.size() <= kMaxPoints) return;
  // A feed that is not trimmed (no limits, or held back by a consumer) would keep a sample per
  // round forever: drop every other one between the ends. A record then takes the age of a later
  // sample — younger, so still never trimmed or dropped early — and byte counts get coarser.
  std::deque<Point> kept;
  for (size_t i = 0; i < points_.size(); ++i) {
    if (i == 0 || i + 1 == points_.size() || i % 2 == 0) kept.push_back(points_[i]);
  }
  points_.swap(kept);
}

uint64_t FeedHistory::TrimTarget(const FeedRetention& retention, uint64_t first,
                                 int64_t now_ms) const {
  uint64_t target = first;
  if (retention.retention_ms > 0) {
    const int64_t cutoff = now_ms - retention.retention_ms;
    for (auto it = points_.rbegin(); it != points_.rend(); ++it) {
      if (it->at_ms <= cutoff) {
        target = std::max(target, it->sequence + 1);
        break;
      }
    }
  }
  if (retention.max_bytes > 0 && RetainedBytes(first) > retention.max_bytes) {
    for (const Point& p : points_) {
      if (appended_ - p.bytes <= retention.max_bytes) {
        target = std::max(target, p.sequence + 1);
        break;
      }
    }
  }
  return target;
}

int64_t FeedHistory::AgeMs(uint64_t position, int64_t now_ms) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), position,
                             [](const Point& p, uint64_t s) { return p.sequence < s; });
  return it == points_.end() ? 0 : std::max<int64_t>(0, now_ms - it->at_ms);
}

uint64_t FeedHistory::RetainedBytes(uint64_t first) const {
  // The bytes through the last sample below `first`: exact at sample boundaries, else the
  // retained size is overstated by at most one round's appends.
  auto it = std::lower_bound(points_.begin(), points_.end(), first,
                             [](const Point& p, uint64_t s) { return p.sequence < s; });
  return appended_ - (it == points_.begin() ? 0 : std::prev(it)->bytes);
}

void FeedHistory::Trimmed(uint64_t first) {
  while (points_.size() > 1 && points_[1].sequence < first) points_.pop_front();
}

}  // namespace shardkit::store::internal
