// The book's setup of `shardkit bench cache`: the store in one `shardkit serve` process, the cache
// in another in front of it over TCP (following the store's change feed), and, as the baseline, a
// third front process with the same listener and route but no cache, forwarding every load to the
// same store. The clients are in this process and reach either front over TCP with the same client
// and the same number of connections.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cache_bench.h"
#include "serve_node.h"
#include "shardkit/services/client.h"

namespace shardkit::bench::cache_bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Messages answered ok on `pattern` by the node behind `client`, from its sys:stats.
uint64_t RouteCount(Handler& client, std::string_view pattern) {
  Message stats_request;
  stats_request.SetString("sys", "stats");
  auto stats = services::CallAndWait(client, stats_request);
  if (!stats.ok()) throw std::runtime_error("bench cache: sys:stats " + stats.status().ToString());
  // routes: {"<pattern>":{"ok":N,…},…}
  std::string_view routes = stats->GetObjectJson("routes").value_or("");
  const std::string key = fmt::format("\"{}\":{{", pattern);
  size_t at = routes.find(key);
  if (at == std::string_view::npos) return 0;
  size_t ok = routes.find("\"ok\":", at + key.size());
  size_t close = routes.find('}', at + key.size());
  if (ok == std::string_view::npos || ok > close) return 0;
  return std::strtoull(routes.data() + ok + 5, nullptr, 10);
}

// The cache's hits and misses so far, from its stats message.
std::pair<uint64_t, uint64_t> HitsAndMisses(Handler& front) {
  Message request;
  request.SetString("sys", "cache").SetString("cmd", "stats");
  auto stats = services::CallAndWait(front, request);
  if (!stats.ok()) throw std::runtime_error("bench cache: " + stats.status().ToString());
  return {stats->GetUint("hits").value_or(0), stats->GetUint("misses").value_or(0)};
}

// One timed slice of loads through `front`: `clients` chains of loads, each sending its next load
// from the reply to its last (on the client's I/O thread: no thread waits per load, so the client
// side costs little next to the nodes), walking `keys` from `cursor` on (past the end, again from
// `wrap_to`).
struct Slice {
  uint64_t loads = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};
class SliceDriver : public std::enable_shared_from_this<SliceDriver> {
 public:
  SliceDriver(Handler& front, const std::vector<uint32_t>& keys, std::atomic<size_t>& cursor,
              size_t wrap_to, std::atomic<uint64_t>& errors)
      : front_(front), keys_(keys), cursor_(cursor), wrap_to_(wrap_to), errors_(errors) {}

  // Runs for `seconds`, or with seconds = 0 until the loads up to `stop_at` were sent.
  Slice Run(int clients, double seconds, size_t stop_at = SIZE_MAX) {
    const auto start = SteadyClock::now();
    stop_at_ = stop_at;
    in_flight_ = clients;
    for (int c = 0; c < clients; ++c) Send();
    if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = seconds > 0;
    done_.wait(lock, [&] { return in_flight_ == 0; });
    slice_.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    slice_.loads = slice_.latencies_us.size();
    return std::move(slice_);
  }

 private:
  // One chain's next load, or its end.
  void Send() {
    const size_t i = cursor_.fetch_add(1);
    if (i >= stop_at_) return Finish();
    const uint32_t key = keys_[wrap_to_ + (i - wrap_to_) % (keys_.size() - wrap_to_)];
    const auto sent = SteadyClock::now();
    Message load = Load(key);
    const Context context(nullptr, nullptr, load.meta());
    front_.Handle(
        std::move(load), context, [self = shared_from_this(), sent](Result<Message> reply) {
          const double us =
              std::chrono::duration<double, std::micro>(SteadyClock::now() - sent).count();
          if (!reply.ok()) ++self->errors_;
          bool again;
          {
            std::lock_guard<std::mutex> lock(self->mu_);
            self->slice_.latencies_us.push_back(us);
            // A failed load ends its chain (counted in errors): an error answered inline must not
            // recurse into the next load.
            again = !self->stopping_ && reply.ok();
          }
          again ? self->Send() : self->Finish();
        });
  }
  void Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) done_.notify_all();
  }

  Handler& front_;
  const std::vector<uint32_t>& keys_;
  std::atomic<size_t>& cursor_;
  const size_t wrap_to_;
  std::atomic<uint64_t>& errors_;
  std::mutex mu_;
  std::condition_variable done_;
  size_t stop_at_ = SIZE_MAX;
  int in_flight_ = 0;      // chains running; guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  Slice slice_;            // guarded by mu_
};

// Sends the loads of keys [0, count) through `front` (the warm-up), `clients` chains of them.
void Warm(Handler& front, const std::vector<uint32_t>& keys, size_t count, int clients,
          std::atomic<uint64_t>& errors) {
  std::atomic<size_t> cursor{0};
  (void)std::make_shared<SliceDriver>(front, keys, cursor, 0, errors)->Run(clients, 0, count);
}

// The text of the entity in a load's answer ("" for an error).
std::string EntOf(const Result<Message>& reply) {
  return reply.ok() ? std::string(reply->GetObjectJson("ent").value_or("")) : std::string();
}

// One write behind the cache's back: `key` (cached) is saved directly on the store's node while
// two threads keep loading it through the cache. Returns the time from the store's
// acknowledgement to the answer of the last stale read (one sent after the acknowledgement that
// still shows the old value), 0 when there was none; `limit` when none was fresh by then.
double StaleMs(Handler& store, Handler& front, size_t key, int round, double limit_ms,
               std::atomic<uint64_t>& errors) {
  const std::string marker = fmt::format("stale-round-{}", round);
  for (int i = 0; i < 2; ++i) (void)services::CallAndWait(front, Load(key));  // cached
  std::atomic<int64_t> ack_ns{INT64_MAX};
  std::atomic<int64_t> last_stale_ns{0};
  const auto origin = SteadyClock::now();
  auto since = [origin] { return (SteadyClock::now() - origin).count(); };
  const int64_t limit_ns = static_cast<int64_t>(limit_ms * 1e6);
  std::atomic<bool> timed_out{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (true) {
        const int64_t sent = since();
        auto reply = services::CallAndWait(front, Load(key));
        const int64_t answered = since();
        if (!reply.ok()) ++errors;
        const bool fresh = EntOf(reply).find(marker) != std::string::npos;
        const int64_t ack = ack_ns.load();
        if (sent > ack && fresh) return;
        if (sent > ack && !fresh) {
          int64_t seen = last_stale_ns.load();
          while (answered > seen && !last_stale_ns.compare_exchange_weak(seen, answered)) {
          }
        }
        if (ack != INT64_MAX && answered - ack > limit_ns) {
          timed_out = true;
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the readers are reading
  Message save;
  save.SetString("store", "save").SetString("kind", "entry");
  save.SetObjectJson(
      "ent", fmt::format(R"({{"id":"{}","text":"{:0>72}","n":{}}})", IdOf(key), marker, key));
  auto saved = services::CallAndWait(store, save);
  ack_ns = since();
  if (!saved.ok()) ++errors;
  for (auto& reader : readers) reader.join();
  if (timed_out) return limit_ms;
  const int64_t last = last_stale_ns.load();
  return last > ack_ns.load() ? static_cast<double>(last - ack_ns.load()) / 1e6 : 0;
}

std::string StoreConfig(const std::string& store_path) {
  return NodeConfigHead("bench-store") + ServiceConfig("entries", "store",
                                                       fmt::format(R"(path = "{}"
patterns = ["store:*,kind:entry", "store:*,kind:entry,cache:true"])",
                                                                   store_path));
}

// The cache's node: the cache takes the loads and reaches the store with cache:true; it follows
// the store's change feed, which is what keeps it fresh, so entries live an hour: with the default
// minute, the entries filled early in the warm-up (a minute over TCP) would all expire together
// inside the timed runs, a burst of misses that a steady state spreads over every minute. The
// baseline front has the same listener and route, and no cache.
std::string FrontConfig(const std::string& store_url, size_t cache_bytes, bool with_cache) {
  if (!with_cache)
    return NodeConfigHead("bench-front") + RouteConfig("store:*,kind:entry", store_url);
  return NodeConfigHead("bench-cache") +
         ServiceConfig("entry-cache", "cache",
                       fmt::format(R"(patterns = ["store:*,kind:entry", "sys:cache,cmd:stats"]
max_bytes = {}
feed_kinds = ["entry"]
ttl_ms = 3600000)",
                                   cache_bytes)) +
         RouteConfig("store:*,kind:entry,cache:true", store_url);
}

// The loaded runs through both fronts, and what the store's node and the cache counted meanwhile.
struct Fronts {
  Slice with, without;
  uint64_t store_loads = 0, hits = 0, misses = 0;  // during the slices through the cache
};
Fronts DriveFronts(Handler& store, Handler& cached, Handler& plain,
                   const std::vector<uint32_t>& keys, const CacheBenchOptions& options,
                   std::atomic<uint64_t>& errors) {
  // Both fronts see the warm-up and then the same keys in the same order, in alternating slices
  // (cache, no cache, …) so that a slow spell of a shared machine weighs on both.
  const int clients = options.clients;
  const size_t warmup = std::min(options.warmup, keys.size() - 1);
  Warm(cached, keys, warmup, clients, errors);
  Warm(plain, keys, warmup, clients, errors);
  std::atomic<size_t> cached_cursor{warmup}, plain_cursor{warmup};
  Fronts out;
  constexpr int kSlices = 3;
  for (int i = 0; i < kSlices; ++i) {
    const uint64_t before = RouteCount(store, "store:*,kind:entry,cache:true");
    const auto [hits_before, misses_before] = HitsAndMisses(cached);
    Slice a = std::make_shared<SliceDriver>(cached, keys, cached_cursor, warmup, errors)
                  ->Run(clients, options.seconds / kSlices);
    out.store_loads += RouteCount(store, "store:*,kind:entry,cache:true") - before;
    const auto [hits_after, misses_after] = HitsAndMisses(cached);
    out.hits += hits_after - hits_before;
    out.misses += misses_after - misses_before;
    Slice b = std::make_shared<SliceDriver>(plain, keys, plain_cursor, warmup, errors)
                  ->Run(clients, options.seconds / kSlices);
    for (auto [from, to] : {std::pair{&a, &out.with}, std::pair{&b, &out.without}}) {
      to->loads += from->loads;
      to->seconds += from->seconds;
      to->latencies_us.insert(to->latencies_us.end(), from->latencies_us.begin(),
                              from->latencies_us.end());
    }
  }
  return out;
}

}  // namespace

Figures RunRemote(const CacheBenchOptions& options, const std::vector<uint32_t>& keys,
                  const std::string& store_path, size_t cache_bytes) {
  const std::string dir = store_path + "-nodes";
  ServeNode store_node(dir + "/store", StoreConfig(store_path));
  ServeNode cache_node(dir + "/cache", FrontConfig(store_node.url(), cache_bytes, true));
  ServeNode plain_node(dir + "/plain", FrontConfig(store_node.url(), cache_bytes, false));
  services::IoRuntime runtime(1);
  auto store = ClientOf(runtime, store_node.url(), 1);
  auto cached = ClientOf(runtime, cache_node.url(), options.clients);
  auto plain = ClientOf(runtime, plain_node.url(), options.clients);
  std::atomic<uint64_t> errors{0};

  const Fronts fronts = DriveFronts(*store, *cached, *plain, keys, options, errors);
  const Slice& with = fronts.with;
  const Slice& without = fronts.without;
  const uint64_t hits = fronts.hits, misses = fronts.misses, store_loads = fronts.store_loads;
  const double with_per_s = with.seconds > 0 ? with.loads / with.seconds : 0;
  const double without_per_s = without.seconds > 0 ? without.loads / without.seconds : 0;

  // One client, one load at a time, alternating between the fronts: the 100 hottest keys (cached
  // on the cache's front, each read thousands of times in the warm-up).
  std::vector<double> hit_us, nocache_us;
  for (int i = 0; i < 4000; ++i) {
    auto& front = i % 2 == 0 ? *cached : *plain;
    const auto sent = SteadyClock::now();
    if (!services::CallAndWait(front, Load(i / 2 % 100)).ok()) ++errors;
    (i % 2 == 0 ? hit_us : nocache_us)
        .push_back(std::chrono::duration<double, std::micro>(SteadyClock::now() - sent).count());
  }

  // Writes behind the cache's back, on the store's node, each to a hot key cached in front.
  std::vector<double> stale_ms;
  for (int round = 0; round < options.stale_rounds; ++round)
    stale_ms.push_back(StaleMs(*store, *cached, round % 100, round, 5'000, errors));

  const double hit_p50 = Percentile(hit_us, 0.5), nocache_p50 = Percentile(nocache_us, 0.5);
  return {
      {"remote_with_cache_per_s", with_per_s},
      {"remote_without_cache_per_s", without_per_s},
      {"remote_speedup", without_per_s > 0 ? with_per_s / without_per_s : 0},
      {"store_load_fraction",
       with.loads > 0 ? static_cast<double>(store_loads) / static_cast<double>(with.loads) : 0},
      {"remote_hit_ratio", hits + misses > 0 ? static_cast<double>(hits) / (hits + misses) : 0},
      {"remote_with_cache_p50_us", Percentile(with.latencies_us, 0.5)},
      {"remote_without_cache_p50_us", Percentile(without.latencies_us, 0.5)},
      {"remote_with_cache_p99_us", Percentile(with.latencies_us, 0.99)},
      {"remote_without_cache_p99_us", Percentile(without.latencies_us, 0.99)},
      {"remote_hit_p50_us", hit_p50},
      {"remote_nocache_p50_us", nocache_p50},
      {"remote_hit_vs_nocache_p50", nocache_p50 > 0 ? hit_p50 / nocache_p50 : 0},
      {"stale_p50_ms", Percentile(stale_ms, 0.5)},
      {"stale_p99_ms", Percentile(stale_ms, 0.99)},
      {"stale_max_ms", stale_ms.empty() ? 0 : *std::max_element(stale_ms.begin(), stale_ms.end())},
      {"stale_rounds", static_cast<double>(stale_ms.size())},
      {"remote_errors", static_cast<double>(errors.load())}};
}

}  // namespace shardkit::bench::cache_bench
