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

struct IoRuntime::Impl {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  // One context per further I/O thread, each run by that thread alone; the listeners' accepted
  // connections and the TCP client's connections are dealt out over `io` and these
  // (ForConnection).
  std::vector<std::unique_ptr<asio::io_context>> more;
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
