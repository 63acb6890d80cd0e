#include "verify.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace shardkit::migrate::internal {

std::optional<store::KsidRange> Intersect(const store::KsidRange& a, const store::KsidRange& b) {
  uint64_t begin = std::max(a.begin, b.begin);
  // end 0 means "to the end of the keyspace".
  auto end_of = [](const store::KsidRange& r) { return r.end == 0 ? ~uint64_t{0} : r.end - 1; };
  uint64_t last = std::min(end_of(a), end_of(b));
  if (begin > last) return std::nullopt;
  return store::KsidRange{begin, last == ~uint64_t{0} ? 0 : last + 1};
}

Result<VerifyReport> Diff(
    const std::vector<Participant>& sources, const std::vector<Participant>& targets,
    const std::map<std::string, store::KsidRange>& ranges,
    const std::function<Status(const std::string& source, uint64_t position)>& caught_up) {
  VerifyReport report;
  for (const Participant& source : sources) {
    uint64_t start = source.store->feed().LastSequence();
    if (Status s = caught_up(source.shard, start); !s.ok()) return s;
    enum Kind { kMissing, kExtra, kDifferent };
    std::vector<std::pair<std::pair<std::string, std::string>, Kind>>
        suspects;  // ((kind, id), why)
    for (const Participant& target : targets) {
      auto range = Intersect(ranges.at(source.shard), ranges.at(target.shard));
      if (!range) continue;
      std::vector<store::EntityRecord> left, right;
      Status a = source.store->ScanRange("", *range, [&](const store::EntityRecord& r) {
        left.push_back(r);
        return true;
      });
      Status b = target.store->ScanRange("", *range, [&](const store::EntityRecord& r) {
        right.push_back(r);
        return true;
      });
      if (!a.ok()) return a;
      if (!b.ok()) return b;
      auto key = [](const store::EntityRecord& r) { return std::tie(r.kind, r.ksid, r.id); };
      size_t i = 0, j = 0;
      while (i < left.size() || j < right.size()) {
        if (j == right.size() || (i < left.size() && key(left[i]) < key(right[j]))) {
          suspects.push_back({{left[i].kind, left[i].id}, kMissing});
          ++i;
        } else if (i == left.size() || key(right[j]) < key(left[i])) {
          suspects.push_back({{right[j].kind, right[j].id}, kExtra});
          ++j;
        } else {
          ++report.compared;
          if (left[i].version != right[j].version || left[i].value != right[j].value) {
            suspects.push_back({{left[i].kind, left[i].id}, kDifferent});
          }
          ++i, ++j;
        }
      }
    }
    if (suspects.empty()) continue;
    // Keys written while we compared are in flux, not wrong: the replicators carry them.
    // In pages up to the head now: a source on another node answers at most 10,000 a page.
    std::set<std::pair<std::string, std::string>> written;
    uint64_t head = source.store->feed().LastSequence();
    for (uint64_t from = start + 1; from <= head;) {
      auto changed = source.store->feed().ReadChanges(from, 10'000);
      if (!changed.ok()) return changed.status();
      if (changed->empty()) break;
      for (const auto& c : *changed) written.emplace(c.kind, c.id);
      from = changed->back().sequence + 1;
    }
    for (const auto& [entity, why] : suspects) {
      if (written.count(entity)) {
        ++report.in_flux;
      } else if (why == kMissing) {
        ++report.missing;
      } else if (why == kExtra) {
        ++report.extra;
      } else {
        ++report.different;
      }
    }
  }
  return report;
}

}  // namespace shardkit::migrate::internal
