#include "replicator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "shardkit/message/thread_name.h"

namespace shardkit::migrate::internal {

Replicator::Replicator(std::string stream, std::string consumer,
                       std::shared_ptr<store::EntityStore> from,
                       std::shared_ptr<store::EntityStore> to, store::KsidRange range,
                       uint64_t start_after)
    : stream_(std::move(stream)),
      consumer_(std::move(consumer)),
      from_(std::move(from)),
      to_(std::move(to)),
      range_(range),
      start_after_(start_after) {
  (void)ReadPosition();
}

// The position stored with the receiving store's data. A store on another node may not answer
// (its node restarts): Step asks again before it reads anything, never guessing a position.
Status Replicator::ReadPosition() {
  auto position = to_->ReplicatedPosition(stream_);
  if (!position.ok()) return position.status();
  applied_ = std::max(*position, start_after_);
  positioned_ = true;
  return Status::Ok();
}

Replicator::~Replicator() { Stop(); }

Result<uint64_t> Replicator::Step(size_t batch) {
  if (!positioned_) {
    if (Status s = ReadPosition(); !s.ok()) return s;
  }
  uint64_t total = 0;
  while (!stop_) {
    auto records = from_->feed().ReadChanges(applied_ + 1, batch);
    if (!records.ok()) return records.status();
    if (records->empty()) break;
    std::vector<store::ChangeRecord> mine;
    for (store::ChangeRecord& r : *records) {
      // Markers of other moves belong to the feed they are in, not to the data; a replicated
      // change came from the other side of this or an earlier migration, never from a client.
      if (r.op != store::ChangeOp::kMoved && !r.replicated && range_.Contains(r.ksid))
        mine.push_back(std::move(r));
    }
    uint64_t last = records->back().sequence;
    if (Status s = to_->ApplyReplicated(stream_, mine, last); !s.ok()) return s;
    total += mine.size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      applied_ = last;
    }
    progressed_.notify_all();
    (void)from_->feed().AdvanceConsumer(consumer_, last + 1);
    if (records->size() < batch) break;
  }
  return total;
}

void Replicator::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    NameThisThread("sk-replicator");
    while (!stop_) {
      auto applied = Step();
      if (!applied.ok() && applied.status().code() == Code::kNotFound) {
        Fail(applied.status());
        return;
      }
      if (!applied.ok()) {
        spdlog::warn("replicator {}: {}", stream_, applied.status().ToString());
        std::unique_lock<std::mutex> lock(mu_);  // back off, then try again
        progressed_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_.load(); });
        continue;
      }
      WaitForRecords();
    }
  });
}

// Sleeps until the source's feed holds a record past what was read, or Stop.
void Replicator::WaitForRecords() {
  auto signal = signal_;
  {
    std::lock_guard<std::mutex> lock(signal->mu);
    signal->appended = false;
  }
  // The wake may outlive this replicator (the feed keeps it until its next record): it holds
  // only the shared signal.
  from_->feed().WhenAppended(applied_.load(), [signal] {
    std::lock_guard<std::mutex> lock(signal->mu);
    signal->appended = true;
    signal->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(signal->mu);
  signal->cv.wait(lock, [&] { return signal->appended || stop_.load(); });
}

void Replicator::Stop() {
  {
    std::lock_guard<std::mutex> lock(signal_->mu);
    stop_ = true;
    signal_->cv.notify_all();
  }
  progressed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Replicator::lag() const {
  uint64_t head = from_->feed().LastSequence();
  uint64_t applied = applied_.load();
  return head > applied ? head - applied : 0;
}

bool Replicator::WaitUntil(uint64_t position, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return progressed_.wait_for(lock, timeout, [&] {
    return applied_ >= position || stop_ || !failure_.ok();
  }) && applied_ >= position;
}

void Replicator::Fail(const Status& read) {
  Status failure = Status::Unavailable(fmt::format(
      "replicator {}: the source's feed no longer holds the records after {} ({}): its consumer "
      "\"{}\" fell behind beyond max_consumer_lag_ms and was dropped; cancel the migration and "
      "start it again",
      stream_, applied_.load(), read.message(), consumer_));
  spdlog::error("{}", failure.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = std::move(failure);
  }
  progressed_.notify_all();
}

Status Replicator::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

}  // namespace shardkit::migrate::internal
