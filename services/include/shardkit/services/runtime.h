// IoRuntime: the threads that run a node's network I/O, timers and signal handlers.
//
// Transports, clients and services that need timers share one runtime. It hides Boost.Asio, so
// this header stays cheap to include; the transports reach the io_context through the internal
// header services/transport/io.h.
//
// Contract: work posted here must not block (it runs on I/O threads). Objects that use the runtime
// (listeners, clients) must be destroyed or closed before it.
//
// Thread-safety: every method is safe to call from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace shardkit::services {

class IoRuntime {
 public:
  // Starts `threads` I/O threads (at least 1), each running an event loop of its own: accepted
  // TCP and HTTP connections and the TCP client's connections are dealt out over all of them,
  // and a connection stays on its thread; posted work, timers, signals, the HTTP client and the
  // other transports run on the first. No lock or wake-up is shared between two threads'
  // connections.
  explicit IoRuntime(int threads = 1);
  // Stops and joins the threads.
  ~IoRuntime();
  IoRuntime(const IoRuntime&) = delete;
  IoRuntime& operator=(const IoRuntime&) = delete;

  // Runs `fn` soon on the first I/O thread.
  void Post(std::function<void()> fn);
  // Runs `fn` on the first I/O thread after `delay` (not before; Stop() drops it).
  void PostAfter(std::chrono::milliseconds delay, std::function<void()> fn);
  // Calls `fn` on the first I/O thread each time the process receives `signal_number` (SIGHUP,
  // SIGTERM, SIGINT). Installs the handler process-wide; meant for the one runtime of `shardkit
  // serve`.
  void OnSignal(int signal_number, std::function<void()> fn);

  // Stops the threads and joins them; pending work is dropped. Idempotent.
  void Stop();
  int threads() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardkit::services
