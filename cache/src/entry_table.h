// EntryTable: one stripe's entries by key. Open addressing with linear probing over (hash, entry)
// pairs kept in one array, so a lookup reads a few adjacent pairs and then the one entry whose
// hash matches; a node-based map would chase a bucket, a node and the key's text, each a likely
// cache miss on a hit. Erasing shifts the rest of the run back, so no tombstones pile up.
//
// E is any type with `std::string key`; the table owns its entries.
// Thread-safety: none; the stripe's lock guards it.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include <shardkit/message/cache_lines.h>

namespace shardkit::cache {

template <typename E>
class EntryTable {
 public:
  EntryTable() : buckets_(kMinBuckets) {}

  // The entry of `key` (whose hash is `hash`), or nullptr.
  E* Find(uint64_t hash, std::string_view key) const {
    for (size_t i = hash & Mask();; i = (i + 1) & Mask()) {
      const Bucket& b = buckets_[i];
      if (!b.entry) return nullptr;
      if (b.hash == hash && b.entry->key == key) return b.entry.get();
    }
  }

  // Adds `entry` (its key must be absent) and returns it.
  E& Insert(uint64_t hash, std::unique_ptr<E> entry) {
    if ((size_ + 1) * 2 > buckets_.size()) Grow();  // at most half full: short runs
    E& added = *entry;
    Place(hash, std::move(entry));
    ++size_;
    return added;
  }

  // Removes `entry` (present, found by `hash`).
  void Erase(uint64_t hash, const E* entry) { (void)Take(hash, entry); }

  // Removes `entry` (present, found by `hash`) and hands it back.
  std::unique_ptr<E> Take(uint64_t hash, const E* entry) {
    size_t i = hash & Mask();
    while (buckets_[i].entry.get() != entry) i = (i + 1) & Mask();
    std::unique_ptr<E> taken = std::move(buckets_[i].entry);
    buckets_[i] = Bucket();
    --size_;
    // Backward shift: move up each later pair of the run whose home is not between the hole and
    // its own place, so every entry stays reachable from its home bucket.
    for (size_t hole = i, j = (i + 1) & Mask(); buckets_[j].entry; j = (j + 1) & Mask()) {
      const size_t home = buckets_[j].hash & Mask();
      if (((j - home) & Mask()) >= ((j - hole) & Mask())) {
        buckets_[hole] = std::move(buckets_[j]);
        hole = j;
      }
    }
    return taken;
  }

  // Calls `f(entry)` for every entry; `f` must not change the table.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Bucket& b : buckets_)
      if (b.entry) f(*b.entry);
  }

  size_t size() const { return size_; }

 private:
  static constexpr size_t kMinBuckets = 16;
  struct Bucket {
    uint64_t hash = 0;
    std::unique_ptr<E> entry;  // null: empty bucket
  };

  size_t Mask() const { return buckets_.size() - 1; }

  void Place(uint64_t hash, std::unique_ptr<E> entry) {
    size_t i = hash & Mask();
    while (buckets_[i].entry) i = (i + 1) & Mask();
    buckets_[i] = Bucket{hash, std::move(entry)};
  }

  void Grow() {
    LineVector<Bucket> old = std::exchange(buckets_, LineVector<Bucket>(buckets_.size() * 2));
    for (Bucket& b : old)
      if (b.entry) Place(b.hash, std::move(b.entry));
  }

  LineVector<Bucket> buckets_;  // a power of two of them, on lines of their own
  size_t size_ = 0;
};

}  // namespace shardkit::cache
