// What the live-split benchmarks share (split_bench.cc in one process, split_remote_bench.cc across
// two `shardkit serve` processes): the steady writer whose writes time the cutover pauses, and the
// check that every write it saw acknowledged still loads its value.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shardkit/message/message.h"
#include "shardkit/message/status.h"

namespace shardkit::bench::split {

using SteadyClock = std::chrono::steady_clock;

// Sends one message and waits for its answer: through a bus in this process, or over TCP.
using Call = std::function<Result<Message>(Message)>;

// The value of `v` at quantile `p` (0 for none).
double Percentile(std::vector<double> v, double p);

// The steady writer: `writes_per_s` saves of `store:save,kind:entry` over 50,000 keys (w0…),
// each timed as the client sees it; what it acknowledged is checked at the end. Its thread starts
// at construction; the queries below may be called while it runs.
class SteadyWriter {
 public:
  SteadyWriter(Call call, int writes_per_s);
  ~SteadyWriter() { Stop(); }
  void Stop();
  // The longest write that overlapped [from, to], in ms.
  double LongestOverlapping(SteadyClock::time_point from, SteadyClock::time_point to);
  // The durations (ms) of the writes that started in [from, to].
  std::vector<double> LatenciesStartedIn(SteadyClock::time_point from, SteadyClock::time_point to);
  uint64_t errors() const { return errors_.load(); }
  // The first error answered, for the report ("" if none).
  std::string first_error();
  // Call after Stop().
  const std::map<std::string, std::string>& acknowledged() const { return acknowledged_; }

 private:
  void Run(int writes_per_s);

  Call call_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> errors_{0};
  std::mutex mu_;
  std::vector<std::pair<SteadyClock::time_point, SteadyClock::time_point>> writes_;  // start, end
  std::map<std::string, std::string> acknowledged_;  // id -> value, guarded by mu_
  std::string first_error_;                          // guarded by mu_
  std::thread thread_;
};

// Acknowledged writes whose value a load through `call` no longer returns.
uint64_t CountLost(const Call& call, const std::map<std::string, std::string>& acknowledged);

}  // namespace shardkit::bench::split
