#include "replicator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace shardkit::migrate::internal {

Replicator::Replicator(std::string stream, std::string consumer,
                       std::shared_ptr<store::EntityStore> from,
                       std::shared_ptr<store::EntityStore> to, store::KsidRange range,
                       uint64_t start_after)
    : stream_(std::move(stream)),
      consumer_(std::move(consumer)),
      from_(std::move(from)),
      to_(std::move(to)),
      range_(range) {
  auto position = to_->ReplicatedPosition(stream_);
  applied_ = std::max(position.ok() ? *position : 0, start_after);
}

Replicator::~Replicator() { Stop(); }

Result<uint64_t> Replicator::Step(size_t batch) {
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
    while (!stop_) {
      auto applied = Step();
      if (!applied.ok()) spdlog::warn("replicator {}: {}", stream_, applied.status().ToString());
      if (!applied.ok() || *applied == 0) {
        std::unique_lock<std::mutex> lock(mu_);
        progressed_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_.load(); });
      }
    }
  });
}

void Replicator::Stop() {
  stop_ = true;
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
  return progressed_.wait_for(lock, timeout, [&] { return applied_ >= position || stop_; }) &&
         applied_ >= position;
}

}  // namespace shardkit::migrate::internal
