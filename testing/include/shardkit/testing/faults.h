// FaultInjector: a Handler decorator that misbehaves on purpose, per route, deterministically.
//
//   ManualScheduler scheduler;
//   FaultInjector faults(scheduler);
//   bus.Add("store:*", faults.Wrap("store", store_handler));
//   faults.On("store").Delay(30);                         // every message on route "store"
//   faults.On("store", "store:save").Error(Code::kUnavailable).Times(1);
//   faults.On("node0->node1").Drop();                     // answered `timeout` at the deadline
//   faults.On("shard:*", "store:save").Duplicate();       // delivered twice, one reply
//   faults.On("store", "store:save").Reorder(3);          // held until 3 arrive, then last first
//
// A rule applies to messages on routes whose name matches `route_glob` (GlobMatches: * and ?)
// and that match `message_pattern` (pattern.h; empty: every message). The first rule that applies
// and is not used up (Times) acts; others are not consulted. Faults:
//   Delay(ms)      the message reaches the handler ms later (scheduler time)
//   Drop()         the handler never sees it; the caller is answered `timeout` when its
//                  meta$.deadline passes, or after drop_timeout_ms when it has none
//   Error(code)    answered with that error without reaching the handler
//   Duplicate()    the handler receives it twice; the caller gets the first reply only
//   Reorder(n)     held until n such messages are held (or reorder_flush_ms passed), then
//                  delivered newest first
// hits() says how often a rule acted. Clear() removes every rule (held messages are released).
//
// Thread-safety: Wrap'ped handlers may be called from any thread; rules are guarded by a mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <shardkit/message/handler.h>
#include <shardkit/testing/scheduler.h>

namespace shardkit::testing {

struct FaultOptions {
  int64_t drop_timeout_ms = 1000;
  int64_t reorder_flush_ms = 10;
};

class FaultInjector {
 public:
  class Rule {
   public:
    Rule& Delay(int64_t ms);
    Rule& Drop();
    Rule& Error(Code code, std::string message = "injected fault");
    Rule& Duplicate();
    Rule& Reorder(size_t window);
    // Acts on the next n messages only (default: every one).
    Rule& Times(int n);
    int hits() const;

    struct Data;
    explicit Rule(std::shared_ptr<Data> data) : data_(std::move(data)) {}

   private:
    std::shared_ptr<Data> data_;
  };

  // `scheduler` must outlive the injector and every delayed message.
  explicit FaultInjector(Scheduler& scheduler, FaultOptions options = {});
  ~FaultInjector();

  // `inner` behind the injector, known to rules as `route_name`.
  std::shared_ptr<Handler> Wrap(std::string route_name, std::shared_ptr<Handler> inner);
  // A new rule (see above); the reference stays valid until Clear() or destruction.
  Rule& On(std::string route_glob, std::string_view message_pattern = "");
  // Removes every rule and delivers the messages held for reordering, in arrival order.
  void Clear();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace shardkit::testing
