// FeedHistory: when the change feed's records were written and how many bytes they take, for
// retention (FeedImpl::TrimRetained) and stats. Records carry no timestamp, so the feed samples
// (last sequence, time, bytes appended so far) once per retention round. A record was written
// before the first sample at or above it; retention and consumer lag take that sample's age as
// the record's, which is never more than the truth, so nothing is trimmed or dropped early. Records
// present at open count as written at open. Not thread-safe: the feed guards it with its write
// mutex.
#pragma once

#include <cstdint>
#include <deque>

#include <shardkit/store/change_feed.h>
#include <shardkit/store/options.h>

namespace shardkit::store::internal {

class FeedHistory {
 public:
  // `first` and `last`: the feed's bounds at open; `bytes`: the bytes of those records.
  FeedHistory(uint64_t first, uint64_t last, uint64_t bytes, int64_t now_ms);

  // The approximate stored size of a record: its key, values and a fixed overhead.
  static uint64_t BytesOf(const ChangeRecord& record);

  void Appended(uint64_t bytes) { appended_ += bytes; }
  // Records that the feed's head was `last` at `now_ms` (nothing if it did not move).
  void Sample(uint64_t last, int64_t now_ms);
  // The position retention trims below (records older than retention_ms; the oldest while more
  // than max_bytes are retained); `first` or lower when nothing is due.
  uint64_t TrimTarget(const FeedRetention& retention, uint64_t first, int64_t now_ms) const;
  // How long ago the record at `position` was at most written; 0 past the last sample.
  int64_t AgeMs(uint64_t position, int64_t now_ms) const;
  // Bytes of the records from `first` on.
  uint64_t RetainedBytes(uint64_t first) const;
  // Forgets the samples no longer needed once records below `first` are gone.
  void Trimmed(uint64_t first);

 private:
  struct Point {
    uint64_t sequence;  // the head at the sample
    int64_t at_ms;
    uint64_t bytes;  // appended through `sequence`
  };
  std::deque<Point> points_;  // ascending; the front is at or below the first retained record
  uint64_t appended_ = 0;     // bytes appended through the head
};

}  // namespace shardkit::store::internal
