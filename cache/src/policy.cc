#include "policy.h"

#include <algorithm>
#include <bit>

namespace shardkit::cache {

FrequencySketch::FrequencySketch(size_t entries)
    : width_(std::bit_ceil(std::max<size_t>(4 * entries, 64))), sample_size_(5 * width_) {
  counters_.assign(4 * width_, 0);
}

size_t FrequencySketch::Index(uint64_t hash, int row) const {
  // A key's four counters share one line (a block of 64): the low bits pick the block, and each
  // row's counter is one of the 16 in that row's quarter of it, picked by other bits.
  const size_t block = static_cast<size_t>(hash) & (width_ / 16 - 1);
  return block * 64 + static_cast<size_t>(row) * 16 + ((hash >> (32 + 4 * row)) & 15);
}

bool FrequencySketch::Increment(uint64_t hash) {
  bool added = false, full = true;
  for (int row = 0; row < 4; ++row) {
    uint8_t& c = counters_[Index(hash, row)];
    if (c < kMaxCount) {
      ++c;
      added = true;
    }
    full = full && c == kMaxCount;
  }
  if (added && ++additions_ >= sample_size_) {
    for (uint8_t& c : counters_) c >>= 1;  // ageing: yesterday's hits count half
    additions_ /= 2;
    ++ageings_;
    return false;
  }
  return full;
}

int FrequencySketch::Estimate(uint64_t hash) const {
  int least = kMaxCount;
  for (int row = 0; row < 4; ++row) least = std::min<int>(least, counters_[Index(hash, row)]);
  return least;
}

namespace {

// One list of slots, most recent first, with its bytes.
struct Segment {
  Slot* front = nullptr;
  Slot* back = nullptr;
  size_t count = 0;
  size_t bytes = 0;
  bool empty() const { return count == 0; }
  void PushFront(Slot& s, int id) {
    s.segment = id;
    s.prev = nullptr;
    s.next = front;
    (front ? front->prev : back) = &s;
    front = &s;
    ++count;
    bytes += s.charge;
  }
  void Unlink(Slot& s) {
    (s.prev ? s.prev->next : front) = s.next;
    (s.next ? s.next->prev : back) = s.prev;
    --count;
    bytes -= s.charge;
  }
  void MoveToFront(Slot& s) {
    if (front == &s) return;  // the hottest entries: nothing to write
    Unlink(s);
    PushFront(s, s.segment);
  }
};

// Each policy is on lines of its own (as its owner stripe): the stripes' policies, made one after
// another, would otherwise share lines that threads holding different stripes' locks write.
class alignas(kCacheLine) Lru final : public Policy {
 public:
  explicit Lru(size_t max_bytes) : max_bytes_(max_bytes) {}
  void Record(uint64_t) override {}
  void Hit(Slot& s, uint64_t) override { all_.MoveToFront(s); }
  void Add(Slot& s, std::vector<Slot*>& evicted, uint64_t) override {
    all_.PushFront(s, 0);
    while (all_.bytes > max_bytes_ && !all_.empty()) {
      Slot& last = *all_.back;
      all_.Unlink(last);
      evicted.push_back(&last);
    }
  }
  void Remove(Slot& s) override { all_.Unlink(s); }
  size_t bytes() const override { return all_.bytes; }

 private:
  const size_t max_bytes_;
  Segment all_;
};

// W-TinyLFU: 1% of the bytes for the window, the rest for the main part, of which 80% protected
// (entries read again while on probation).
class alignas(kCacheLine) TinyLfu final : public Policy {
 public:
  TinyLfu(size_t max_bytes, size_t entries)
      : window_max_(std::max<size_t>(1, max_bytes / 100)),
        main_max_(max_bytes - std::min(max_bytes, window_max_)),
        protected_max_(main_max_ * 4 / 5),
        sketch_(entries) {}

  void Record(uint64_t hash) override { sketch_.Increment(hash); }

  void Hit(Slot& s, uint64_t access) override {
    // A settled key's counters are all at the maximum, which only the next ageing lowers.
    // (A slot settled before the last ageing counts again, and is written only once it settles:
    // threads reading one entry at once do not pass its line between them for this.)
    if (s.settled_at != sketch_.ageings() && sketch_.Increment(s.hash))
      s.settled_at = sketch_.ageings();
    Segment& from = Of(s.segment);
    if (s.segment == kProbation) {  // read again: promote, demoting the protected part's oldest
      from.Unlink(s);
      protected_.PushFront(s, kProtected);
      s.moved_at = access;
      while (protected_.bytes > protected_max_ && protected_.count > 1) {
        Slot& old = *protected_.back;
        protected_.Unlink(old);
        probation_.PushFront(old, kProbation);
      }
      return;
    }
    // Each access puts at most one slot at a front, so a slot put at its front fewer accesses
    // ago than a quarter of its segment's length is still in that first quarter, far from the
    // back that evicts: moving it again would change no eviction soon. Skipped, a hot entry's
    // hits write neither its lines nor its neighbours' nor the segment's, which threads reading
    // it at once would otherwise pass between their cores on every hit.
    if (access - s.moved_at < from.count / 4) return;
    from.MoveToFront(s);
    s.moved_at = access;
  }

  void Add(Slot& s, std::vector<Slot*>& evicted, uint64_t access) override {
    s.settled_at = Slot::kUnsettled;  // its miss was counted, not its settling
    window_.PushFront(s, kWindow);
    s.moved_at = access;
    while (window_.bytes > window_max_ && !window_.empty()) {
      Slot& candidate = *window_.back;
      window_.Unlink(candidate);
      Admit(candidate, evicted);
    }
  }

  void Remove(Slot& s) override { Of(s.segment).Unlink(s); }
  size_t bytes() const override { return window_.bytes + probation_.bytes + protected_.bytes; }

 private:
  static constexpr int kWindow = 0, kProbation = 1, kProtected = 2;
  Segment& Of(int id) {
    return id == kWindow ? window_ : id == kProbation ? probation_ : protected_;
  }

  // The window's oldest entry wants a place in the main part: it gets one while there is room,
  // else only by being used more often than each entry it would push out.
  void Admit(Slot& candidate, std::vector<Slot*>& evicted) {
    const int wanted = sketch_.Estimate(candidate.hash);
    while (probation_.bytes + protected_.bytes + candidate.charge > main_max_) {
      Segment& from = probation_.empty() ? protected_ : probation_;
      if (from.empty()) break;
      Slot& victim = *from.back;
      if (wanted <= sketch_.Estimate(victim.hash)) {
        evicted.push_back(&candidate);  // refused: the main part keeps its entries
        return;
      }
      from.Unlink(victim);
      evicted.push_back(&victim);
    }
    if (probation_.bytes + protected_.bytes + candidate.charge > main_max_) {
      evicted.push_back(&candidate);  // larger than the main part itself
      return;
    }
    probation_.PushFront(candidate, kProbation);
  }

  const size_t window_max_, main_max_, protected_max_;
  FrequencySketch sketch_;
  Segment window_, probation_, protected_;
};

}  // namespace

std::unique_ptr<Policy> MakePolicy(PolicyKind kind, size_t max_bytes, size_t entries) {
  if (kind == PolicyKind::kLru) return std::make_unique<Lru>(max_bytes);
  return std::make_unique<TinyLfu>(max_bytes, entries);
}

}  // namespace shardkit::cache
