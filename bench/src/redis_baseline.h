// redis-server's GET, timed by redis-benchmark, as the baseline of `shardkit bench net`: the same
// machine, key count, value size, connections and depth as the node's TCP runs, in slices that
// take turns with them.
#pragma once

#include <memory>
#include <string>

#include <sys/types.h>

namespace shardkit::bench {

// A `redis-server` on a free 127.0.0.1 port (no persistence, its files in a temp dir), holding
// `keys` keys of `value_bytes` bytes each under the names redis-benchmark's `-r` draws from
// (`key:` and a 12-digit number). Killed when destroyed.
class RedisBaseline {
 public:
  // nullptr, with the reason on stderr, when redis-server or redis-benchmark is missing or does
  // not start: the redis figures become null instead of failing the benchmark.
  static std::unique_ptr<RedisBaseline> Start(int keys, int value_bytes);
  ~RedisBaseline();
  RedisBaseline(const RedisBaseline&) = delete;
  RedisBaseline& operator=(const RedisBaseline&) = delete;

  // GETs per second of one `redis-benchmark -t get` over random populated keys with
  // `connections` clients, `depth` commands pipelined on each (-P), run for about `seconds`
  // (redis-benchmark counts requests, not time: the count comes from the previous slice's rate
  // at this depth). 0, with the reason on stderr, when it fails.
  double Slice(int connections, int depth, double seconds);

 private:
  RedisBaseline(std::string dir, unsigned short port, pid_t pid, int keys, int value_bytes)
      : dir_(std::move(dir)), port_(port), pid_(pid), keys_(keys), value_bytes_(value_bytes) {}
  bool WaitReady();
  bool Populate();
  // One redis-benchmark run of `requests` GETs: its GETs per second, 0 if it failed.
  double Run(int connections, int depth, double requests);

  std::string dir_;
  unsigned short port_;
  pid_t pid_;
  int keys_;
  int value_bytes_;
  double last_rate_[2] = {0, 0};  // the last slice's rate at depth 1 and at depth > 1
};

}  // namespace shardkit::bench
