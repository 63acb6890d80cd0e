#include "feed_impl.h"

#include <algorithm>

#include "shardkit/message/json.h"
#include "validation.h"

namespace shardkit::store::internal {

FeedImpl::FeedImpl(Backend& backend, std::mutex& write_mu, FeedState state)
    : backend_(backend),
      write_mu_(write_mu),
      last_sequence_(state.last_sequence),
      first_retained_(state.first_retained) {
  for (const auto& [name, position] : state.consumers) {
    if (name.compare(0, kReplicaPrefix.size(), kReplicaPrefix) == 0) {
      replicas_.emplace(name.substr(kReplicaPrefix.size()), position);
    } else if (name.compare(0, kClaimPrefix.size(), kClaimPrefix) == 0) {
      claimant_ = name.substr(kClaimPrefix.size());
    } else if (name.compare(0, kShardKeyPrefix.size(), kShardKeyPrefix) == 0) {
      // shardkey$<kind length>:<kind><field>
      std::string_view rest = std::string_view(name).substr(kShardKeyPrefix.size());
      size_t colon = rest.find(':');
      size_t length =
          colon == std::string_view::npos ? 0 : std::stoul(std::string(rest.substr(0, colon)));
      if (colon != std::string_view::npos && colon + 1 + length <= rest.size()) {
        shard_keys_.emplace(rest.substr(colon + 1, length), rest.substr(colon + 1 + length));
      }
    } else {
      consumers_.emplace(name, position);
    }
  }
}

uint64_t FeedImpl::ReplicaPositionLocked(std::string_view stream) const {
  auto it = replicas_.find(stream);
  return it == replicas_.end() ? 0 : it->second;
}

void FeedImpl::PlanReplicaPosition(std::string_view stream, uint64_t position, WriteSet& writes) {
  writes.consumers.push_back({std::string(kReplicaPrefix) + std::string(stream), position});
}

void FeedImpl::PlanShardKey(std::string_view kind, std::string_view field, WriteSet& writes) {
  writes.consumers.push_back({std::string(kShardKeyPrefix) + std::to_string(kind.size()) + ":" +
                                  std::string(kind) + std::string(field),
                              1});
}

void FeedImpl::PlanClaim(std::string_view owner, bool held, WriteSet& writes) {
  writes.consumers.push_back({std::string(kClaimPrefix) + std::string(owner),
                              held ? std::optional<uint64_t>(1) : std::nullopt});
}

void FeedImpl::SetShardKeyLocked(std::string_view kind, std::string_view field) {
  shard_keys_.emplace(std::string(kind), std::string(field));
}

void FeedImpl::SetReplicaPositionLocked(std::string_view stream, uint64_t position) {
  replicas_[std::string(stream)] = position;
}

Status FeedImpl::CommitLocked(WriteSet& writes) {
  uint64_t sequence = LastSequence();
  for (ChangeRecord& change : writes.changes) change.sequence = ++sequence;
  if (Status s = backend_.Commit(writes); !s.ok()) return s;
  last_sequence_.store(sequence, std::memory_order_release);
  if (!writes.changes.empty()) WakeUpTo(sequence);
  return Status::Ok();
}

void FeedImpl::WhenAppended(uint64_t after_sequence, std::function<void()> wake) {
  {
    std::lock_guard<std::mutex> lock(wakes_mu_);
    // Checked under wakes_mu_: a commit publishes its sequence before it takes the lock to wake,
    // so either this sees the new sequence or that commit sees this wake.
    if (LastSequence() <= after_sequence) {
      wakes_.emplace_back(after_sequence, std::move(wake));
      return;
    }
  }
  wake();
}

void FeedImpl::WakeUpTo(uint64_t sequence) {
  std::vector<std::function<void()>> due;
  {
    std::lock_guard<std::mutex> lock(wakes_mu_);
    auto keep = std::partition(wakes_.begin(), wakes_.end(),
                               [sequence](const auto& w) { return w.first >= sequence; });
    for (auto it = keep; it != wakes_.end(); ++it) due.push_back(std::move(it->second));
    wakes_.erase(keep, wakes_.end());
  }
  for (auto& wake : due) wake();
}

Result<std::vector<ChangeRecord>> FeedImpl::ReadChanges(uint64_t from_sequence, size_t limit) {
  if (from_sequence == 0) return Status::InvalidField("from", "sequence numbers start at 1");
  if (limit == 0) return Status::InvalidField("limit", "must be positive");
  Result<std::vector<ChangeRecord>> records = backend_.ReadChanges(from_sequence, limit);
  // Checked after reading: a trim publishes its new start before it commits, so a read that raced
  // a trim is refused rather than silently missing records.
  const uint64_t first = FirstRetainedSequence();
  if (from_sequence < first) {
    return Status::NotFound("from: records below " + std::to_string(first) + " were trimmed",
                            JsonObject().Add("field", "from").Add("first_retained", first).str());
  }
  return records;
}

Status FeedImpl::CheckPosition(uint64_t position) const {
  if (position < FirstRetainedSequence()) {
    return Status::InvalidField(
        "position", "records below " + std::to_string(FirstRetainedSequence()) + " were trimmed");
  }
  if (position > LastSequence() + 1) {
    return Status::InvalidField(
        "position", "is beyond the next sequence " + std::to_string(LastSequence() + 1));
  }
  return Status::Ok();
}

Status FeedImpl::RegisterConsumer(std::string_view name, uint64_t position) {
  if (Status s = CheckId(name, "name"); !s.ok()) return s;
  if (name.compare(0, kReplicaPrefix.size(), kReplicaPrefix) == 0 ||
      name.compare(0, kShardKeyPrefix.size(), kShardKeyPrefix) == 0 ||
      name.compare(0, kClaimPrefix.size(), kClaimPrefix) == 0) {
    return Status::InvalidField(
        "name", "names starting with \"replica$\", \"shardkey$\" or \"claim$\" are reserved");
  }
  std::lock_guard lock(write_mu_);
  if (Status s = CheckPosition(position); !s.ok()) return s;
  if (consumers_.contains(name)) {
    return Status::Conflict("name: consumer \"" + std::string(name) + "\" is already registered");
  }
  WriteSet writes;
  writes.consumers.push_back({std::string(name), position});
  if (Status s = CommitLocked(writes); !s.ok()) return s;
  consumers_.emplace(name, position);
  return Status::Ok();
}

Status FeedImpl::AdvanceConsumer(std::string_view name, uint64_t position) {
  std::lock_guard lock(write_mu_);
  auto it = consumers_.find(name);
  if (it == consumers_.end())
    return Status::NotFound("name: no consumer \"" + std::string(name) + "\"");
  if (position < it->second) {
    return Status::InvalidField(
        "position", "consumers only move forward (at " + std::to_string(it->second) + ")");
  }
  if (Status s = CheckPosition(position); !s.ok()) return s;
  WriteSet writes;
  writes.consumers.push_back({std::string(name), position});
  if (Status s = CommitLocked(writes); !s.ok()) return s;
  it->second = position;
  return Status::Ok();
}

Status FeedImpl::RemoveConsumer(std::string_view name) {
  std::lock_guard lock(write_mu_);
  auto it = consumers_.find(name);
  if (it == consumers_.end())
    return Status::NotFound("name: no consumer \"" + std::string(name) + "\"");
  WriteSet writes;
  writes.consumers.push_back({std::string(name), std::nullopt});
  if (Status s = CommitLocked(writes); !s.ok()) return s;
  consumers_.erase(it);
  return Status::Ok();
}

std::map<std::string, uint64_t> FeedImpl::Consumers() const {
  std::lock_guard lock(write_mu_);
  return {consumers_.begin(), consumers_.end()};
}

Result<uint64_t> FeedImpl::TrimFeed() {
  std::lock_guard lock(write_mu_);
  if (consumers_.empty()) return uint64_t{0};
  uint64_t lowest = consumers_.begin()->second;
  for (const auto& [name, position] : consumers_) lowest = std::min(lowest, position);
  const uint64_t first = FirstRetainedSequence();
  if (lowest <= first) return uint64_t{0};
  first_retained_.store(lowest, std::memory_order_release);  // before the commit: see ReadChanges
  WriteSet writes;
  writes.trim_below = lowest;
  if (Status s = CommitLocked(writes); !s.ok()) {
    first_retained_.store(first, std::memory_order_release);
    return s;
  }
  return lowest - first;
}

}  // namespace shardkit::store::internal

namespace shardkit::store {

std::string_view ChangeOpName(ChangeOp op) {
  switch (op) {
    case ChangeOp::kSave:
      return "save";
    case ChangeOp::kRemove:
      return "remove";
    case ChangeOp::kExpire:
      return "expire";
    case ChangeOp::kMoved:
      return "moved";
  }
  return "unknown";
}

}  // namespace shardkit::store
