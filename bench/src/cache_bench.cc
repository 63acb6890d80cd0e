// `shardkit bench cache`: a Zipf(0.99) load workload over 100,000 RocksDB entities, with the entry
// cache (holding 10% of them) in front and without it, at the same concurrency, in one run.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "shardkit/bench/bench.h"
#include "shardkit/cache/entity_cache.h"
#include "shardkit/message/bus.h"
#include "shardkit/store/service.h"

namespace shardkit::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Samples ranks 0..n-1 with P(k) proportional to 1/(k+1)^s.
class Zipf {
 public:
  Zipf(size_t n, double s) : cdf_(n) {
    double sum = 0;
    for (size_t k = 0; k < n; ++k) cdf_[k] = (sum += 1.0 / std::pow(static_cast<double>(k + 1), s));
    for (double& c : cdf_) c /= sum;
  }
  size_t operator()(std::mt19937_64& rng) const {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return std::min<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(),
                            cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

std::string IdOf(size_t rank) { return fmt::format("{:016x}", rank * 0x9E3779B97F4A7C15ull); }

Message Load(size_t rank) {
  Message m;
  m.SetString("store", "load").SetString("kind", "entry").SetString("id", IdOf(rank));
  return m;
}

// Runs `clients` threads of synchronous loads for `seconds`; returns ops/s.
double Drive(Bus& bus, const Zipf& zipf, int clients, double seconds,
             std::atomic<uint64_t>& errors) {
  std::atomic<uint64_t> ops{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      // In-process handlers answer inline, so Act measures the request path without the cost
      // of a blocking wait (which would dominate a 2 µs cache hit).
      uint64_t mine = 0;
      while (!stop) {
        bus.Act(Load(zipf(rng)), [&errors](Result<Message> r) {
          if (!r.ok()) ++errors;
        });
        if (++mine % 256 == 0) ops += 256;
      }
    });
  }
  auto start = SteadyClock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return ops / std::chrono::duration<double>(SteadyClock::now() - start).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)))];
}

// A RocksDB store of `n` entities of about 90 bytes each, written in batches of 1000.
std::shared_ptr<store::EntityStore> FilledStore(const std::string& path, size_t n) {
  store::StoreOptions store_options;
  store_options.path = path;
  store_options.purge_interval_ms = 0;
  auto opened = store::OpenRocksDbStore(store_options);
  if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
  std::shared_ptr<store::EntityStore> entity_store = std::move(opened).value();
  std::vector<store::SaveRequest> batch;
  for (size_t i = 0; i < n; ++i) {
    store::SaveRequest r;
    r.kind = "entry";
    r.id = IdOf(i);
    r.ent = fmt::format(R"({{"text":"{:0>72}","n":{}}})", i, i);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == n) {
      (void)entity_store->SaveBatch(batch);
      batch.clear();
    }
  }
  return entity_store;
}

// The cache in front of the store as a node composes it: the store's route, overridden by the
// cache, which reaches the store with Context::Prior.
void Compose(Bus& bus, std::shared_ptr<Handler> store, std::shared_ptr<Handler> cache) {
  (void)bus.Add("store:*,kind:entry", std::move(store));
  (void)bus.Override("store:*,kind:entry", std::move(cache));
}

// The cache's charge for one entry, from a probe cache that loaded one.
size_t EntryBytes(const std::shared_ptr<Handler>& service) {
  auto probe = cache::MakeEntityCache();
  Bus bus;
  Compose(bus, service, probe);
  (void)bus.ActAndWait(Load(0));
  return probe->stats().bytes_used;
}

// 100 concurrent loads of a cold key through a fresh cache, the store's replies held until all
// 100 are sent: the loads that reached the store, and the requests answered.
std::pair<int, int> ConcurrentMisses(const std::shared_ptr<Handler>& service,
                                     const cache::CacheOptions& cache_options, size_t key) {
  std::atomic<int> store_loads{0};
  std::vector<ReplyFn> held;
  std::mutex held_mu;
  Bus counting;
  Compose(counting, MakeHandler([&](Message m, const Context& c, ReplyFn reply) {
            ++store_loads;
            service->Handle(std::move(m), c, [&, reply](Result<Message> r) {
              std::lock_guard<std::mutex> lock(held_mu);
              held.push_back([reply, r](Result<Message>) { reply(r); });
            });
          }),
          cache::MakeEntityCache(cache_options));
  std::atomic<int> answered{0};
  for (int i = 0; i < 100; ++i)
    counting.Act(Load(key), [&](Result<Message> r) { answered += r.ok(); });
  {
    std::lock_guard<std::mutex> lock(held_mu);
    for (auto& release : held) release(Status::Internal("unused"));
    held.clear();
  }
  counting.Replace(Router());
  return {store_loads.load(), answered.load()};
}

// Latencies of `n` loads of the hottest key, certainly cached.
std::vector<double> HitLatenciesMs(Bus& cached, int n) {
  std::vector<double> hit_ms;
  for (int i = 0; i < n; ++i) {
    auto start = SteadyClock::now();
    cached.Act(Load(0), [](Result<Message>) {});
    hit_ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
  }
  return hit_ms;
}

}  // namespace

Figures RunCacheBench(const CacheBenchOptions& options) {
  std::string root =
      (std::filesystem::temp_directory_path() / fmt::format("shardkit-bench-cache-{}", getpid()))
          .string();
  std::filesystem::remove_all(root);
  std::shared_ptr<store::EntityStore> entity_store = FilledStore(root + "/store", options.entities);
  std::shared_ptr<Handler> service = store::MakeStoreService(entity_store);
  // Size the cache to hold `cached_fraction` of the entities.
  cache::CacheOptions cache_options;
  cache_options.max_bytes =
      std::max<size_t>(1, EntryBytes(service) * options.entities * options.cached_fraction);
  Zipf zipf(options.entities, options.zipf_s);
  std::atomic<uint64_t> errors{0};

  Bus plain;
  (void)plain.Add("store:*,kind:entry", service);
  double without = Drive(plain, zipf, options.clients, options.seconds, errors);

  auto cache = cache::MakeEntityCache(cache_options);
  Bus cached;
  Compose(cached, service, cache);
  Drive(cached, zipf, options.clients, options.seconds / 2, errors);  // warm up
  auto warm = cache->stats();
  double with = Drive(cached, zipf, options.clients, options.seconds, errors);
  auto after = cache->stats();
  double hits = static_cast<double>(after.hits - warm.hits);
  double misses = static_cast<double>(after.misses - warm.misses);
  std::vector<double> hit_ms = HitLatenciesMs(cached, 20'000);
  auto [store_loads, answered] = ConcurrentMisses(service, cache_options, options.entities - 1);

  plain.Replace(Router());
  cached.Replace(Router());
  entity_store.reset();
  std::filesystem::remove_all(root);
  return {{"hit_ratio", hits + misses > 0 ? hits / (hits + misses) : 0},
          {"with_cache_per_s", with},
          {"without_cache_per_s", without},
          {"speedup", without > 0 ? with / without : 0},
          {"hit_p50_ms", Percentile(hit_ms, 0.5)},
          {"hit_p99_ms", Percentile(hit_ms, 0.99)},
          {"store_loads_for_100_concurrent_misses", static_cast<double>(store_loads)},
          {"answered_of_100", static_cast<double>(answered)},
          {"errors", static_cast<double>(errors.load())},
          {"cache_bytes", static_cast<double>(cache_options.max_bytes)}};
}

}  // namespace shardkit::bench
