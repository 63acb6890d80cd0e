// `shardkit bench net --transport nats` (net_nats.cc): a nats-server for the bench, and the same
// store:load work as the TCP runs through a shardkit NATS client.
#pragma once

#include <sys/types.h>

#include <string>

#include "net_run.h"
#include "shardkit/bench/bench.h"

namespace shardkit::bench {

// `nats-server` on a free 127.0.0.1 port (GOMAXPROCS=1 unless set), killed when destroyed.
class NatsServerProcess {
 public:
  NatsServerProcess();
  ~NatsServerProcess();
  NatsServerProcess(const NatsServerProcess&) = delete;
  NatsServerProcess& operator=(const NatsServerProcess&) = delete;
  std::string url() const;

 private:
  std::string store_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
};

// Closed loop over NATS at options.connections × options.depth requests in flight.
RunResult RunNats(const std::string& url, const NetOptions& options);

}  // namespace shardkit::bench
