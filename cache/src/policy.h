// Which entries a cache keeps within its byte bound: plain LRU, or W-TinyLFU (a small window LRU
// in front of a segmented LRU, admitting a newcomer to the main part only when a frequency sketch
// says it is used more often than the entry it would push out, as Caffeine does). Skewed loads
// keep their hot keys under W-TinyLFU where a scan of cold ones flushes an LRU (docs/cache.md,
// "Admission and eviction").
//
// A policy orders Slots, which its owner keeps (the entry table); it never owns entries.
// Thread-safety: none; the owner's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/message/cache_lines.h>

namespace shardkit::cache {

// An entry's key, held in the entry itself up to kInline bytes (every entity key; list keys,
// which hold a query, may be longer and go to the heap): a hit compares it without reading a
// second block of memory.
class SlotKey {
 public:
  static constexpr size_t kInline = 48;
  SlotKey& operator=(std::string_view key) {
    size_ = key.size();
    if (size_ <= kInline) {
      key.copy(inline_, size_);
      heap_.clear();
    } else {
      heap_.assign(key);
    }
    return *this;
  }
  std::string_view view() const {
    return size_ <= kInline ? std::string_view(inline_, size_) : std::string_view(heap_);
  }
  size_t size() const { return size_; }
  friend bool operator==(const SlotKey& a, std::string_view b) { return a.view() == b; }

 private:
  char inline_[kInline];
  size_t size_ = 0;
  std::string heap_;  // keys longer than kInline
};

// A policy's view of one entry; lives as long as the entry. The policy's lists run through the
// slots themselves, so reordering one on a hit touches no separate list node.
struct Slot {
  SlotKey key;
  uint64_t hash = 0;
  size_t charge = 0;
  int segment = 0;  // the policy's own
  // The sketch's ageing count when this slot's key last had every counter at its maximum: until
  // the sketch ages again, counting a hit of it would change nothing, and is skipped.
  uint32_t settled_at = kUnsettled;
  static constexpr uint32_t kUnsettled = ~uint32_t{0};
  uint64_t moved_at = 0;  // the owner's lookup count when the policy last put this slot at a front
  Slot* prev = nullptr;   // in that segment's list, most recent first
  Slot* next = nullptr;
};

// Counts how often keys are used: a count-min sketch of counters up to 31 in 4 rows of `width`
// counters each (4 × `entries`, rounded up to a power of two), halved every 5 × `width`
// increments (20 to 40 per entry) so that old popularity fades. With four counters per entry in
// each row, two keys seldom share all four (`bench cache`'s hit ratio at Zipf 0.99: 0.7843 with
// one counter per entry and halving every 10 × `width`, 0.7925 with these, both counting to 15).
// A key's four counters lie in one cache line, one in each quarter of it (as Caffeine lays out
// its sketch): counting or estimating a key reads one line where four rows apart read four, and a
// miss does both three times (0.7948 against 0.7952 with the rows apart, counting to 31).
class FrequencySketch {
 public:
  // Counters stop here. A byte holds more, but a key once hot keeps a high count through more
  // halvings the higher it may climb; 31 (rather than Caffeine's 15, which packs counters in
  // nibbles) tells apart keys that 15 ranked equal, at one more halving for a key to fade
  // (`bench cache`'s hit ratio 0.7919 with 15, 0.7952 with 31, 0.7955 with 255, the rows apart).
  static constexpr int kMaxCount = 31;
  explicit FrequencySketch(size_t entries);
  // Counts one use of `hash`. True when each of its counters is then at the maximum, so that no
  // further Increment of it changes anything before the next ageing.
  bool Increment(uint64_t hash);
  int Estimate(uint64_t hash) const;
  // How many times the counters were halved so far.
  uint32_t ageings() const { return ageings_; }

 private:
  size_t Index(uint64_t hash, int row) const;
  LineVector<uint8_t> counters_;  // 4 rows of width_ counters (0..kMaxCount)
  size_t width_;
  size_t additions_ = 0;
  size_t sample_size_;
  uint32_t ageings_ = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // A miss of `hash` (W-TinyLFU counts every access, hit or miss).
  virtual void Record(uint64_t hash) = 0;
  // `slot` (present) was read, and is counted as Record counts a miss. `access` is the owner's
  // count of lookups so far: the owner keeps it on a line that a lookup writes anyway, so a hit on
  // a hot entry writes no line of the policy, and reads none of the sketch while it is settled.
  virtual void Hit(Slot& slot, uint64_t access) = 0;
  // `slot` is new; afterwards the policy holds at most its bound. The slots it let go (possibly
  // `slot` itself, when admission refuses it) are unlinked and appended to `evicted`.
  virtual void Add(Slot& slot, std::vector<Slot*>& evicted, uint64_t access) = 0;
  // `slot` leaves (invalidated, expired, replaced).
  virtual void Remove(Slot& slot) = 0;
  virtual size_t bytes() const = 0;
};

enum class PolicyKind { kLru, kTinyLfu };

// `max_bytes`: the bound; `entries`: about how many entries fit (sizes the sketch).
std::unique_ptr<Policy> MakePolicy(PolicyKind kind, size_t max_bytes, size_t entries);

}  // namespace shardkit::cache
