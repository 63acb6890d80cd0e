// Internal to nats_link.cc: the I/O thread of a NATS transport link.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "nats_link.h"
#include "shardkit/message/thread_name.h"

namespace shardkit::services {

// The I/O thread of a transport link: cnats' event-loop mode (natsOptions_SetEventLoop) driven by
// poll(2), level-triggered, so a read that leaves bytes in the socket is simply polled again.
// cnats calls Attach/Read/Write/Detach with its connection lock held, from any thread; they only
// set flags here and wake the thread when it sleeps. The thread reads (natsConnection_
// ProcessReadEvent parses and queues the messages on their subscriptions), drains the inline
// subscriptions, then writes everything published meanwhile in one go (ProcessWriteEvent),
// waiting for POLLOUT only when the socket is full.
class NatsLink::Loop {
 public:
  // `on_turn` runs on the I/O thread before it writes, in each turn after MarkOutbox().
  explicit Loop(std::function<void()> on_turn)
      : on_turn_(std::move(on_turn)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    thread_ = std::thread([this] { Main(); });
  }
  ~Loop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    Wake();
    if (thread_.joinable()) thread_.join();
    DestroySpent();
    if (wake_fd_ >= 0) close(wake_fd_);
  }
  bool ok() const { return wake_fd_ >= 0; }
  bool OnThread() const { return std::this_thread::get_id() == thread_id_.load(); }

  static natsStatus Attach(void** user, void* loop, natsConnection* nc, natsSock socket) {
    auto* self = static_cast<Loop*>(loop);
    *user = self;
    self->Update([&] {
      self->nc_ = nc;
      self->fd_ = socket;
      self->read_ = true;
      ++self->attached_;
    });
    return NATS_OK;
  }
  static natsStatus Read(void* user, bool add) {
    auto* self = static_cast<Loop*>(user);
    self->Update([&] { self->read_ = add; });
    return NATS_OK;
  }
  static natsStatus Write(void* user, bool add) {
    auto* self = static_cast<Loop*>(user);
    self->Update([&] { self->write_ = add; });
    return NATS_OK;
  }
  static natsStatus Detach(void* user) {
    auto* self = static_cast<Loop*>(user);
    self->Update([&] {
      self->fd_ = -1;
      self->read_ = self->write_ = false;
    });
    return NATS_OK;
  }

  // Runs `task` on the I/O thread: now when called there, else soon (and waits for it when
  // `wait`, unless the thread has stopped).
  void Run(std::function<void()> task, bool wait) {
    if (OnThread()) {
      task();
      return;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      tasks_.push_back([task = std::move(task), done] {
        task();
        done->set_value();
      });
    }
    Wake();
    if (wait) finished.wait();
  }

  // There is something for on_turn: it runs in the thread's next turn (now, when it sleeps).
  void MarkOutbox() {
    if (outbox_.exchange(true, std::memory_order_acq_rel)) return;  // already marked
    Update([] {});
  }

  void AddInline(natsSubscription* sub, std::function<void(natsMsg*)> fn) {
    Run([this, sub, fn = std::move(fn)]() mutable { inline_.emplace_back(sub, std::move(fn)); },
        false);
  }
  void RemoveInline(natsSubscription* sub) {
    Run([this,
         sub] { std::erase_if(inline_, [sub](const auto& entry) { return entry.first == sub; }); },
        true);
  }

 private:
  template <typename Fn>
  void Update(Fn fn) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn();
      wake = sleeping_;
    }
    if (wake && !OnThread()) Wake();
  }
  void Wake() {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof(one)) < 0) {
    }  // already signalled (EAGAIN): the thread wakes anyway
  }

  // Hands each queued message of every inline subscription to its handler (at most those queued
  // now, so writes are not starved by a stream of reads).
  void DrainInline() {
    for (size_t i = 0; i < inline_.size(); ++i) {
      natsSubscription* sub = inline_[i].first;
      uint64_t queued = 0;
      if (natsSubscription_QueuedMsgs(sub, &queued) != NATS_OK) continue;
      for (uint64_t n = 0; n < queued; ++n) {
        natsMsg* msg = nullptr;
        if (natsSubscription_NextMsg(&msg, sub, 0) != NATS_OK || msg == nullptr) break;
        // A copy: the handler may add or remove inline subscriptions (entries move).
        auto fn = inline_[i].second;
        fn(msg);
        spent_.push_back(msg);
        if (i >= inline_.size() || inline_[i].first != sub) break;
      }
    }
  }

  void Main() {
    NameThisThread("sk-nats-io");
    thread_id_ = std::this_thread::get_id();
    std::vector<std::function<void()>> tasks;
    for (;;) {
      natsConnection* nc;
      int fd;
      bool reading, writing;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
        tasks.swap(tasks_);
      }
      for (auto& task : tasks) task();
      if (!tasks.empty()) DrainInline();
      tasks.clear();
      // What was queued in this turn (and by other threads meanwhile) goes out now.
      if (outbox_.exchange(false, std::memory_order_acq_rel)) on_turn_();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        nc = nc_;
        fd = fd_;
        writing = write_;
      }
      // Optimistic: the socket almost always has room, so write before polling for it.
      if (writing && fd >= 0) natsConnection_ProcessWriteEvent(nc);
      // cnats hands each destroyed message to its GC thread (under one library-wide lock),
      // waking it when it sleeps: destroying many at once, when the thread is about to sleep or
      // has a large batch, costs one wake-up per batch instead of one per message.
      if (spent_.size() >= kSpentBatch) DestroySpent();
      pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
        if (!tasks_.empty() || outbox_.load(std::memory_order_acquire)) continue;
        nc = nc_;
        fd = fd_;
        reading = read_;
        writing = write_;
        if (fd >= 0 && (reading || writing) && attached_ != invalid_) {
          fds[1].fd = fd;
          fds[1].events = static_cast<short>((reading ? POLLIN : 0) | (writing ? POLLOUT : 0));
        }
        sleeping_ = true;
      }
      int ready = poll(fds, 2, spent_.empty() ? -1 : 0);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        sleeping_ = false;
      }
      if (ready == 0) {
        DestroySpent();  // nothing to do now: a good moment
        continue;
      }
      if (ready <= 0) continue;
      if (fds[0].revents != 0) {
        uint64_t count;
        if (read(wake_fd_, &count, sizeof(count)) < 0) {
        }  // EAGAIN: another reader got it first
      }
      if (fds[1].fd < 0 || fds[1].revents == 0) continue;
      if (fds[1].revents & POLLNVAL) {  // closed under us: wait for the next Attach
        std::lock_guard<std::mutex> lock(mutex_);
        invalid_ = attached_;
        continue;
      }
      if (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) {
        natsConnection_ProcessReadEvent(nc);
        DrainInline();
      }
      if (fds[1].revents & POLLOUT) natsConnection_ProcessWriteEvent(nc);
    }
  }

  void DestroySpent() {
    for (natsMsg* msg : spent_) natsMsg_Destroy(msg);
    spent_.clear();
  }

  static constexpr size_t kSpentBatch = 1024;
  const std::function<void()> on_turn_;
  std::atomic<bool> outbox_{false};
  const int wake_fd_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::mutex mutex_;
  natsConnection* nc_ = nullptr;  // guarded by mutex_
  int fd_ = -1;                   // guarded by mutex_
  bool read_ = false;             // guarded by mutex_
  bool write_ = false;            // guarded by mutex_
  bool sleeping_ = false;         // guarded by mutex_
  uint64_t attached_ = 0;         // guarded by mutex_: Attach calls so far
  uint64_t invalid_ = 0;          // guarded by mutex_: attached_ when poll last said POLLNVAL
  bool stop_ = false;             // guarded by mutex_
  std::vector<std::function<void()>> tasks_;  // guarded by mutex_
  // I/O thread only.
  std::vector<std::pair<natsSubscription*, std::function<void(natsMsg*)>>> inline_;
  std::vector<natsMsg*> spent_;  // handled, destroyed in a batch
};

}  // namespace shardkit::services
