#include "io.h"

#include <spdlog/spdlog.h>

#include "shardkit/message/thread_name.h"

namespace shardkit::services {
namespace {

void WaitForSignal(IoRuntime::Impl& impl) {
  impl.signals->async_wait([&impl](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;  // cancelled: the runtime is stopping
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(impl.mutex);
      auto it = impl.handlers.find(signal_number);
      if (it != impl.handlers.end()) fn = it->second;
    }
    if (fn) fn();
    WaitForSignal(impl);
  });
}

}  // namespace

IoRuntime::IoRuntime(int threads) : impl_(std::make_unique<Impl>()) {
  if (threads < 1) threads = 1;
  for (int i = 1; i < threads; ++i) {
    impl_->more.push_back(std::make_unique<IoContext>(1));
    impl_->more_work.emplace_back(impl_->more.back()->get_executor());
  }
  for (int i = 0; i < threads; ++i) {
    asio::io_context* io = i == 0 ? &impl_->io : impl_->more[i - 1].get();
    impl_->threads.emplace_back([io] {
      NameThisThread("sk-io");
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {
          // A completion handler threw: a bug. Log it and keep the thread serving.
          spdlog::error("I/O thread: unhandled exception: {}", e.what());
        }
      }
    });
  }
}

IoRuntime::~IoRuntime() { Stop(); }

int IoRuntime::threads() const { return static_cast<int>(impl_->threads.size()); }

void IoRuntime::Post(std::function<void()> fn) { asio::post(impl_->io, std::move(fn)); }

void IoRuntime::PostAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(impl_->io, delay);
  timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) fn();
  });
}

void IoRuntime::OnSignal(int signal_number, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->stopped) return;
  bool first = !impl_->signals;
  if (first) impl_->signals = std::make_unique<asio::signal_set>(impl_->io);
  impl_->handlers[signal_number] = std::move(fn);
  impl_->signals->add(signal_number);
  if (first) WaitForSignal(*impl_);
}

void IoRuntime::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    if (impl_->signals) {
      boost::system::error_code ignored;
      impl_->signals->cancel(ignored);
    }
  }
  impl_->work.reset();
  impl_->io.stop();
  for (auto& work : impl_->more_work) work.reset();
  for (auto& io : impl_->more) io->stop();
  for (auto& thread : impl_->threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // Stop called from an I/O thread: it returns from run() by itself
    } else if (thread.joinable()) {
      thread.join();
    }
  }
}

}  // namespace shardkit::services
