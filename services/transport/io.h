// Internal: the Boost.Asio side of IoRuntime, for the few translation units that do network I/O
// (tcp_server.cc, tcp_client.cc, http.cc, runtime.cc). Boost 1.74's awaitable.hpp needs <utility>
// first with GCC 12.
#pragma once

#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "shardkit/services/runtime.h"

namespace shardkit::services {

namespace asio = boost::asio;

// An io_context whose services can be shut down before it is destroyed. With several contexts, a
// pending operation of one may hold an object of another (an accept on the listener's context
// holds the socket made for a connection's context): every context is shut down, its pending
// operations destroyed, while all still exist, and only then are they destroyed.
class IoContext : public asio::io_context {
 public:
  using asio::io_context::io_context;
  void ShutDown() { shutdown(); }
};

struct IoRuntime::Impl {
  ~Impl() {
    // Twice: destroying one context's operations may post to another already shut down.
    for (int round = 0; round < 2; ++round) {
      io.ShutDown();
      for (auto& context : more) context->ShutDown();
    }
  }

  IoContext io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  // One context per further I/O thread, each run by that thread alone; the listeners' accepted
  // connections and the TCP client's connections are dealt out over `io` and these
  // (ForConnection).
  std::vector<std::unique_ptr<IoContext>> more;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> more_work;
  std::atomic<size_t> next_connection{0};
  asio::io_context& ForConnection() {
    size_t i = next_connection.fetch_add(1, std::memory_order_relaxed) % (more.size() + 1);
    return i == 0 ? io : *more[i - 1];
  }
  std::vector<std::thread> threads;
  std::mutex mutex;  // guards signals, handlers, stopped
  std::unique_ptr<asio::signal_set> signals;
  std::map<int, std::function<void()>> handlers;
  bool stopped = false;
};

}  // namespace shardkit::services
