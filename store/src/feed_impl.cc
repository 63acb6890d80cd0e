#include "feed_impl.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "shardkit/message/json.h"
#include "validation.h"

namespace shardkit::store::internal {
namespace {

// The most records one trim commit deletes: the write lock is released between batches, so a
// large trim (SQLite deletes row by row) never holds up saves for long.
constexpr uint64_t kTrimBatch = 4096;

// The bytes of the records retained at open (one pass over the feed).
uint64_t RetainedBytesAtOpen(Backend& backend, const FeedState& state) {
  uint64_t bytes = 0;
  for (uint64_t from = state.first_retained; from <= state.last_sequence;) {
    Result<std::vector<ChangeRecord>> records = backend.ReadChanges(from, 1024);
    if (!records.ok() || records->empty()) break;  // counted as far as readable: stats only
    for (const ChangeRecord& r : *records) bytes += FeedHistory::BytesOf(r);
    from = records->back().sequence + 1;
  }
  return bytes;
}

}  // namespace

FeedImpl::FeedImpl(Backend& backend, std::mutex& write_mu, FeedState state,
                   const StoreOptions& options)
    : backend_(backend),
      write_mu_(write_mu),
      last_sequence_(state.last_sequence),
      first_retained_(state.first_retained),
      retention_(options.feed_retention),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Default()),
      scheduler_(options.scheduler != nullptr ? *options.scheduler : Scheduler::Shared()),
      history_(state.first_retained, state.last_sequence, RetainedBytesAtOpen(backend, state),
               clock_.NowMs()) {
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
  if (retention_.interval_ms > 0) {
    // A failed round changes nothing; the next one retries.
    trim_task_ = scheduler_.Every(std::chrono::milliseconds(retention_.interval_ms),
                                  [this] { (void)TrimRetained(); });
  }
}

FeedImpl::~FeedImpl() {
  if (trim_task_ != 0) scheduler_.Cancel(trim_task_);  // waits for a round in progress
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
  if (Status s = ApplyLocked(writes); !s.ok()) return s;
  return backend_.ConfirmSynced();
}

Status FeedImpl::ApplyLocked(WriteSet& writes) {
  uint64_t sequence = LastSequence();
  for (ChangeRecord& change : writes.changes) change.sequence = ++sequence;
  if (Status s = backend_.Commit(writes); !s.ok()) return s;
  for (const ChangeRecord& change : writes.changes) history_.Appended(FeedHistory::BytesOf(change));
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

uint64_t FeedImpl::LowestConsumerLocked(uint64_t limit) const {
  for (const auto& [name, position] : consumers_) limit = std::min(limit, position);
  return limit;
}

Status FeedImpl::TrimBelowLocked(uint64_t below) {
  const uint64_t first = FirstRetainedSequence();
  first_retained_.store(below, std::memory_order_release);  // before the commit: see ReadChanges
  WriteSet writes;
  writes.trim_below = below;
  if (Status s = ApplyLocked(writes); !s.ok()) {
    first_retained_.store(first, std::memory_order_release);
    return s;
  }
  history_.Trimmed(below);
  trimmed_total_ += below - first;
  return backend_.ConfirmSynced();  // the records are gone whatever it answers
}

Result<uint64_t> FeedImpl::TrimFeed() {
  std::lock_guard lock(write_mu_);
  if (consumers_.empty()) return uint64_t{0};
  const uint64_t lowest = LowestConsumerLocked(consumers_.begin()->second);
  const uint64_t first = FirstRetainedSequence();
  if (lowest <= first) return uint64_t{0};
  if (Status s = TrimBelowLocked(lowest); !s.ok()) return s;
  return lowest - first;
}

Result<uint64_t> FeedImpl::DropLaggardsLocked(uint64_t target, int64_t now_ms,
                                              std::vector<std::string>& dropped) {
  uint64_t kept = target;
  for (auto it = consumers_.begin(); it != consumers_.end();) {
    const auto& [name, position] = *it;
    const int64_t lag_ms = history_.AgeMs(position, now_ms);
    if (position >= target || retention_.max_consumer_lag_ms == 0 ||
        lag_ms <= retention_.max_consumer_lag_ms) {
      kept = std::min(kept, position);
      ++it;
      continue;
    }
    WriteSet writes;
    writes.consumers.push_back({name, std::nullopt});
    if (Status s = CommitLocked(writes); !s.ok()) return s;
    spdlog::warn(
        "change feed: consumer \"{}\" dropped: at {} it lags {} ms behind the head, beyond "
        "max_consumer_lag_ms {}; its next read below the retained records is not_found",
        name, position, lag_ms, retention_.max_consumer_lag_ms);
    dropped.push_back(name);
    ++dropped_total_;
    it = consumers_.erase(it);
  }
  return kept;
}

Result<TrimReport> FeedImpl::TrimRetained() {
  TrimReport report;
  uint64_t target = 0;
  {
    std::lock_guard lock(write_mu_);
    const int64_t now = clock_.NowMs();
    history_.Sample(LastSequence(), now);
    target = history_.TrimTarget(retention_, FirstRetainedSequence(), now);
    if (target <= FirstRetainedSequence()) return report;
    Result<uint64_t> kept = DropLaggardsLocked(target, now, report.dropped);
    if (!kept.ok()) return kept.status();
    target = *kept;
  }
  while (true) {
    std::lock_guard lock(write_mu_);
    const uint64_t first = FirstRetainedSequence();
    // A consumer registered since the target was chosen holds it back too.
    const uint64_t below = LowestConsumerLocked(std::min(target, first + kTrimBatch));
    if (below <= first) break;
    if (Status s = TrimBelowLocked(below); !s.ok()) return s;
    report.trimmed += below - first;
  }
  if (report.trimmed > 0) backend_.ReclaimFeedSpace(FirstRetainedSequence());
  return report;
}

FeedStats FeedImpl::Stats() const {
  std::lock_guard lock(write_mu_);
  FeedStats stats;
  const int64_t now = clock_.NowMs();
  stats.first_retained = FirstRetainedSequence();
  stats.last_sequence = LastSequence();
  stats.records = stats.last_sequence + 1 - stats.first_retained;
  stats.bytes = history_.RetainedBytes(stats.first_retained);
  stats.trimmed_total = trimmed_total_;
  stats.dropped_consumers_total = dropped_total_;
  for (const auto& [name, position] : consumers_) {
    const uint64_t head = stats.last_sequence + 1;
    stats.consumers.push_back({name, position, head > position ? head - position : 0,
                               position < head ? history_.AgeMs(position, now) : 0});
  }
  return stats;
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
