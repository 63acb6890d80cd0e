#include "shardkit/shard/shard_map.h"
#include "shardkit/message/json.h"

#include <algorithm>

#include <fmt/format.h>

namespace shardkit::shard {
namespace {

// A bound: "" (keyspace edge) or 2..16 hex digits, whole bytes, left-aligned in 64 bits.
Result<uint64_t> ParseBound(std::string_view bound, std::string_view range) {
  if (bound.size() % 2 != 0 || bound.size() > 16) {
    return Status::Invalid(fmt::format(
        "shard range '{}': bound '{}' must be whole hex bytes (2 to 16 hex digits)", range, bound));
  }
  uint64_t value = 0;
  for (char c : bound) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return Status::Invalid(fmt::format("shard range '{}': '{}' is not a hex digit", range, c));
    }
    value = (value << 4) | static_cast<uint64_t>(digit);
  }
  return bound.empty() ? 0 : value << (64 - 4 * bound.size());
}

std::string FormatBound(uint64_t value) {
  std::string hex = fmt::format("{:016x}", value);
  while (hex.size() > 2 && hex.compare(hex.size() - 2, 2, "00") == 0) hex.resize(hex.size() - 2);
  return hex;
}

}  // namespace

Result<store::KsidRange> ParseRange(std::string_view text) {
  if (size_t at = text.find('@'); at != std::string_view::npos) {
    if (at + 1 == text.size())
      return Status::Invalid(fmt::format("shard '{}': empty tag after '@'", text));
    text = text.substr(0, at);
  }
  size_t dash = text.find('-');
  if (dash == std::string_view::npos || text.find('-', dash + 1) != std::string_view::npos) {
    return Status::Invalid(fmt::format(
        "shard range '{}': expected <start>-<end> in hex, e.g. 40-80, -40 or c0-", text));
  }
  std::string_view begin_text = text.substr(0, dash), end_text = text.substr(dash + 1);
  auto begin = ParseBound(begin_text, text);
  if (!begin.ok()) return begin.status();
  auto end = ParseBound(end_text, text);
  if (!end.ok()) return end.status();
  if (!begin_text.empty() && *begin == 0) {
    return Status::Invalid(
        fmt::format("shard range '{}': write the start of the keyspace as an empty bound ('-{}')",
                    text, end_text));
  }
  if (!end_text.empty() && *end == 0) {
    return Status::Invalid(fmt::format("shard range '{}': the end bound must be above 0", text));
  }
  if (!end_text.empty() && *begin >= *end) {
    return Status::Invalid(fmt::format("shard range '{}': the start must be below the end", text));
  }
  return store::KsidRange{*begin, *end};
}

std::string FormatRange(const store::KsidRange& range) {
  std::string out = range.begin == 0 ? "" : FormatBound(range.begin);
  out += '-';
  if (range.end != 0) out += FormatBound(range.end);
  return out;
}

Result<std::string> CanonicalShardName(std::string_view text) {
  auto range = ParseRange(text);
  if (!range.ok()) return range.status();
  std::string name = FormatRange(*range);
  if (size_t at = text.find('@'); at != std::string_view::npos) name += text.substr(at);
  return name;
}

Result<ShardMap> ShardMap::Make(uint64_t epoch, const std::vector<std::string>& ranges,
                                std::map<std::string, std::string> shard_keys) {
  if (ranges.empty()) return Status::Invalid("shard map: no ranges (use \"-\" for one shard)");
  ShardMap map;
  map.epoch_ = epoch;
  for (const std::string& text : ranges) {
    auto range = ParseRange(text);
    if (!range.ok()) return Status::Invalid("shard map: " + range.status().message());
    map.shards_.push_back(Shard{*CanonicalShardName(text), *range});
  }
  std::sort(map.shards_.begin(), map.shards_.end(),
            [](const Shard& a, const Shard& b) { return a.range.begin < b.range.begin; });
  if (map.shards_.front().range.begin != 0) {
    return Status::Invalid(
        fmt::format("shard map: gap before '{}' (the keyspace starts at 0; the first range must "
                    "start with '-')",
                    map.shards_.front().name));
  }
  for (size_t i = 1; i < map.shards_.size(); ++i) {
    const Shard& prev = map.shards_[i - 1];
    const Shard& next = map.shards_[i];
    if (prev.range.end == 0 || prev.range.end > next.range.begin) {
      return Status::Invalid(
          fmt::format("shard map: ranges '{}' and '{}' overlap", prev.name, next.name));
    }
    if (prev.range.end < next.range.begin) {
      return Status::Invalid(
          fmt::format("shard map: gap between '{}' and '{}'", prev.name, next.name));
    }
  }
  if (map.shards_.back().range.end != 0) {
    return Status::Invalid(fmt::format(
        "shard map: gap after '{}' (the last range must end with '-')", map.shards_.back().name));
  }
  for (const auto& [kind, field] : shard_keys) {
    if (kind.empty() || field.empty())
      return Status::Invalid("shard map: shard_keys: kind and field must not be empty");
  }
  map.shard_keys_ = std::move(shard_keys);
  return map;
}

const Shard& ShardMap::ShardFor(uint64_t ksid) const {
  // The last shard whose begin <= ksid; the map covers the keyspace, so one always exists.
  auto it = std::upper_bound(shards_.begin(), shards_.end(), ksid,
                             [](uint64_t k, const Shard& s) { return k < s.range.begin; });
  return *(it - 1);
}

const Shard* ShardMap::Find(std::string_view name) const {
  for (const Shard& s : shards_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::string& ShardMap::ShardKeyOf(std::string_view kind) const {
  static const std::string kId = "id";
  if (shard_keys_.empty()) return kId;  // every kind by id: no key to build and look up
  auto it = shard_keys_.find(std::string(kind));
  return it == shard_keys_.end() ? kId : it->second;
}

ShardMap ShardMap::WithEpoch(uint64_t epoch) const {
  ShardMap copy = *this;
  copy.epoch_ = epoch;
  return copy;
}

ShardMapHolder::ShardMapHolder(ShardMap initial)
    : current_(std::make_shared<const ShardMap>(std::move(initial))) {}

std::shared_ptr<const ShardMap> ShardMapHolder::Current() const { return current_.Load(); }

Status ShardMapHolder::CompareAndSwap(uint64_t expected_epoch, ShardMap next) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t epoch = current_.Load()->epoch();
  if (epoch != expected_epoch) {
    return Status::Conflict(
        fmt::format("shard map epoch is {}, not the expected {}", epoch, expected_epoch),
        JsonObject().Add("epoch", epoch).str());
  }
  if (next.epoch() <= expected_epoch) {
    return Status::Invalid(
        fmt::format("new shard map epoch {} must be above {}", next.epoch(), expected_epoch));
  }
  auto candidate = std::make_shared<const ShardMap>(std::move(next));
  if (persist_) {
    if (Status s = persist_(*candidate); !s.ok()) return s;
  }
  current_.Publish(candidate);
  return Status::Ok();
}

void ShardMapHolder::OnChange(std::function<Status(const ShardMap&)> persist) {
  std::lock_guard<std::mutex> lock(mu_);
  persist_ = std::move(persist);
}

}  // namespace shardkit::shard
