// `shardkit bench cqrs`: command ack throughput with concurrent clients (group commit), and the lag
// between a command's ack and its projection at a steady command rate.
//
// Ack: `clients` clients send store:save commands through the bus to the command service, one in
// flight each, for `ack_seconds`: as asynchronous clients (ack_per_s: the next command is sent from
// the previous ack) and as one blocking thread per client (ack_per_s_threads, which on a 2-core box
// mostly measures thread wake-ups). The log is RocksDB with Durability::kGroup (the default: a
// process crash loses nothing acknowledged).
// Lag: a paced producer sends `lag_rate` commands/s for `lag_seconds` while an applier writes them
// to a RocksDB store and a projection (entries per user, PerUserCount below) to its RocksDB read
// model; a command's lag is the time from its ack to the commit of the projection batch holding it.
// Feed lag: the same pace of saves straight into a RocksDB store, and an entities projection that
// reads the store's change feed by store:changes messages; an entity's lag is the time from its
// save's ack to the commit of the projection batch holding it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "shardkit/bench/bench.h"
#include "shardkit/cqrs/applier.h"
#include "shardkit/cqrs/command_service.h"
#include "shardkit/cqrs/entities_projection.h"
#include "shardkit/cqrs/projection_service.h"
#include "shardkit/cqrs/read_model.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/service.h"

namespace shardkit::bench {
namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
T Must(Result<T> r, std::string_view what) {
  if (!r.ok())
    throw std::runtime_error(fmt::format("cqrs bench: {}: {}", what, r.status().ToString()));
  return std::move(r).value();
}
void Must(const Status& s, std::string_view what) {
  if (!s.ok()) throw std::runtime_error(fmt::format("cqrs bench: {}: {}", what, s.ToString()));
}

Message Command(uint64_t i) {
  Message m;
  m.SetString("store", "save");
  m.SetString("kind", "entry");
  m.SetObjectJson("ent",
                  fmt::format(R"({{"id":"e{}","user":"u{}","text":"bench entry number {}"}})",
                              i % 100'000, i % 1000, i));
  return m;
}

// The lag run's read model. It mirrors a per-user counting read model (the microblog's entries per
// user) key for key and write for write: the user of each entry, a count per user and the user's
// entry ids, so `bench cqrs` figures stay comparable with binaries that shipped that model. Only
// Apply runs in the bench; it is never queried.
class PerUserCount final : public cqrs::Projection {
 public:
  std::string name() const override { return "entries_per_user:entry"; }
  Result<std::vector<cqrs::Write>> Apply(const cqrs::Event& e,
                                         const cqrs::StateView& state) override {
    if (e.kind != "entry" || e.op == cqrs::EventOp::kOther) return std::vector<cqrs::Write>{};
    std::optional<std::string> user;
    if (e.op == cqrs::EventOp::kSave) user = cqrs::EntityStringField(e.value, "user");
    return users_.Move(state, e.id, user);
  }
  Result<Message> Query(const Message&, const cqrs::ReadView&) override {
    return Status::Invalid("the bench's read model answers no queries");
  }

 private:
  const cqrs::GroupIndex users_{'x', 'n', 'u'};
};

std::shared_ptr<store::EntityStore> OpenStore(const std::string& path) {
  store::StoreOptions options;
  options.path = path;
  options.purge_interval_ms = 0;
  return Must(store::OpenRocksDbStore(options), "open store");
}

std::shared_ptr<cqrs::CommandLog> OpenLog(const std::string& path) {
  cqrs::CommandLogOptions options;
  options.path = path;
  return Must(cqrs::CommandLog::Open(options), "open command log");
}

// `clients` asynchronous clients, each with one command in flight: the next is sent from the ack
// of the previous one, so no client thread has to be woken per ack.
double AsyncAckPerSecond(const std::string& dir, const CqrsBenchOptions& options) {
  Bus bus;
  auto log = OpenLog(dir + "/async-ack-log");
  Must(bus.Add("store:save,kind:entry", cqrs::MakeCommandService(log)), "route");
  struct State {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> acked{0}, failed{0};
    std::mutex mu;
    std::condition_variable cv;
    int running = 0;  // guarded by mu
  } state;
  std::function<void(uint64_t)> send = [&](uint64_t i) {
    bus.Act(Command(i), [&, i](Result<Message> ack) {
      (ack.ok() ? state.acked : state.failed).fetch_add(1, std::memory_order_relaxed);
      if (!state.stop.load(std::memory_order_relaxed) && ack.ok()) return send(i + options.clients);
      std::lock_guard lock(state.mu);
      if (--state.running == 0) state.cv.notify_all();
    });
  };
  const auto start = Clock::now();
  {
    std::lock_guard lock(state.mu);
    state.running = options.clients;
  }
  for (int c = 0; c < options.clients; ++c) send(c);
  std::this_thread::sleep_for(std::chrono::duration<double>(options.ack_seconds));
  state.stop = true;
  const uint64_t acked = state.acked.load();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::unique_lock lock(state.mu);
  state.cv.wait(lock, [&] { return state.running == 0; });
  if (state.failed.load() > 0)
    throw std::runtime_error(fmt::format("cqrs bench: {} commands failed", state.failed.load()));
  return static_cast<double>(acked) / seconds;
}

// `clients` threads, each waiting for its ack before sending the next command.
double AckPerSecond(const std::string& dir, const CqrsBenchOptions& options) {
  Bus bus;
  auto log = OpenLog(dir + "/ack-log");
  Must(bus.Add("store:save,kind:entry", cqrs::MakeCommandService(log)), "route");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, failed{0};
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (int c = 0; c < options.clients; ++c) {
    clients.emplace_back([&, c] {
      for (uint64_t i = c; !stop.load(std::memory_order_relaxed); i += options.clients) {
        auto ack = bus.ActAndWait(Command(i));
        (ack.ok() ? acked : failed).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(options.ack_seconds));
  stop = true;
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed.load() > 0)
    throw std::runtime_error(fmt::format("cqrs bench: {} commands failed", failed.load()));
  return static_cast<double>(acked.load()) / seconds;
}

// Lag of one paced run: the ack and the projection commit of each position 1..total, in ns since
// a common origin.
struct LagClock {
  explicit LagClock(uint64_t total) : total(total), acked_at(total + 2), projected_at(total + 2) {}
  int64_t Since() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - origin).count();
  }
  void Acked(uint64_t position) {
    if (position >= 1 && position <= total) acked_at[position].store(Since());
  }
  // The projection's on_applied (one thread): every position up to `applied` is projected now.
  void Projected(uint64_t applied) {
    const int64_t now = Since();
    for (uint64_t p = last_projected + 1; p <= std::min(applied, total); ++p)
      projected_at[p].store(now);
    last_projected = std::max(last_projected, applied);
  }
  std::pair<double, double> Percentiles() const {
    std::vector<double> lags_ms;
    lags_ms.reserve(total);
    for (uint64_t p = 1; p <= total; ++p) {
      const int64_t a = acked_at[p].load(), b = projected_at[p].load();
      // The ack callback and the projection commit race; a projection that wins counts as 0.
      if (a > 0 && b > 0) lags_ms.push_back(std::max<int64_t>(0, b - a) / 1e6);
    }
    std::sort(lags_ms.begin(), lags_ms.end());
    auto at = [&](double q) {
      return lags_ms.empty() ? 0.0 : lags_ms[static_cast<size_t>(q * (lags_ms.size() - 1))];
    };
    return {at(0.50), at(0.99)};
  }

  const Clock::time_point origin = Clock::now();
  const uint64_t total;
  std::vector<std::atomic<int64_t>> acked_at, projected_at;
  uint64_t last_projected = 0;  // the projection's thread only
};

// Paced producer: every millisecond, send(i) for the messages due by then at `rate` per second
// (no catch-up bursts beyond that).
void Pace(uint64_t total, double rate, const std::function<void(uint64_t)>& send) {
  const auto start = Clock::now();
  uint64_t sent = 0;
  while (sent < total) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const uint64_t due = std::min<uint64_t>(total, static_cast<uint64_t>(elapsed * rate));
    for (; sent < due; ++sent) send(sent);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void WaitCaughtUp(cqrs::ProjectionService& projection, uint64_t total, uint64_t failed) {
  const bool caught_up = projection.WaitApplied(total, std::chrono::seconds(60));
  projection.Stop();
  if (!caught_up || failed > 0) {
    throw std::runtime_error(fmt::format("cqrs bench: projection reached {} of {} ({} failed)",
                                         projection.applied(), total, failed));
  }
}

// Commands through a command service; an applier writes them to a store and a projection reads
// the command log (woken by the log's listener).
std::pair<double, double> LagPercentiles(const std::string& dir, const CqrsBenchOptions& options) {
  Bus bus;
  auto log = OpenLog(dir + "/lag-log");
  std::shared_ptr<store::EntityStore> target = OpenStore(dir + "/lag-store");
  Must(bus.Add("store:save,kind:entry", cqrs::MakeCommandService(log)), "route");
  Must(bus.Add("store:*,kind:entry,cqrs:apply", store::MakeStoreService(target)), "route");
  auto applier = Must(cqrs::Applier::Start(log, bus, {}), "start applier");

  const uint64_t total = static_cast<uint64_t>(options.lag_rate * options.lag_seconds);
  LagClock lag(total);
  cqrs::ProjectionOptions projection_options;
  projection_options.path = dir + "/lag-read-model";
  projection_options.on_applied = [&lag](uint64_t applied) { lag.Projected(applied); };
  auto projection =
      Must(cqrs::ProjectionService::Start(std::make_unique<PerUserCount>(),
                                          cqrs::MakeCommandLogSource(log), projection_options),
           "start projection");
  std::atomic<uint64_t> failed{0};
  Pace(total, options.lag_rate, [&](uint64_t i) {
    bus.Act(Command(i), [&](Result<Message> ack) {
      if (!ack.ok()) return (void)failed.fetch_add(1);
      lag.Acked(*ack->GetUint("position"));
    });
  });
  WaitCaughtUp(*projection, total, failed.load());
  applier->Stop();
  return lag.Percentiles();
}

// Saves straight into a RocksDB store through its store:* service; an entities projection reads
// the store's change feed by store:changes messages. A save of a new entity into the fresh store
// is the feed record of its position: the i-th save is record i.
std::pair<double, double> FeedLagPercentiles(const std::string& dir,
                                             const CqrsBenchOptions& options) {
  Bus bus;
  std::shared_ptr<store::EntityStore> source = OpenStore(dir + "/feed-store");
  Must(bus.Add("store:*,kind:entry", store::MakeStoreService(source)), "route");
  Must(bus.Add("store:changes", store::MakeStoreService(source)), "route");

  const uint64_t total = static_cast<uint64_t>(options.lag_rate * options.lag_seconds);
  LagClock lag(total);
  cqrs::ProjectionOptions projection_options;
  projection_options.path = dir + "/feed-read-model";
  projection_options.on_applied = [&lag](uint64_t applied) { lag.Projected(applied); };
  Message changes;
  changes.SetString("store", "changes");
  auto projection = Must(
      cqrs::ProjectionService::Start(cqrs::MakeEntitiesProjection("entry"),
                                     cqrs::MakeChangeFeedSource(bus, changes), projection_options),
      "start projection");
  std::atomic<uint64_t> failed{0};
  Pace(total, options.lag_rate, [&](uint64_t i) {
    Message save = Command(i);
    save.SetObjectJson("ent", fmt::format(R"({{"id":"f{}","user":"u{}","text":"bench entry {}"}})",
                                          i, i % 1000, i));
    // The store service answers on this thread, in order: the ack of save i is record i + 1.
    bus.Act(std::move(save), [&, position = i + 1](Result<Message> ack) {
      if (!ack.ok()) return (void)failed.fetch_add(1);
      lag.Acked(position);
    });
  });
  WaitCaughtUp(*projection, total, failed.load());
  return lag.Percentiles();
}

}  // namespace

Figures RunCqrsBench(const CqrsBenchOptions& options) {
  std::string dir = options.dir;
  const bool temporary = dir.empty();
  if (temporary) {
    dir =
        (std::filesystem::temp_directory_path() / fmt::format("shardkit-cqrs-bench-{}", ::getpid()))
            .string();
  }
  std::filesystem::create_directories(dir);
  Figures figures;
  try {
    figures.emplace_back("ack_per_s", AsyncAckPerSecond(dir, options));
    figures.emplace_back("ack_per_s_threads", AckPerSecond(dir, options));
    auto [p50, p99] = LagPercentiles(dir, options);
    figures.emplace_back("lag_p50_ms", p50);
    figures.emplace_back("lag_p99_ms", p99);
    auto [feed_p50, feed_p99] = FeedLagPercentiles(dir, options);
    figures.emplace_back("feed_lag_p50_ms", feed_p50);
    figures.emplace_back("feed_lag_p99_ms", feed_p99);
  } catch (...) {
    if (temporary) std::filesystem::remove_all(dir);
    throw;
  }
  if (temporary) std::filesystem::remove_all(dir);
  return figures;
}

}  // namespace shardkit::bench
