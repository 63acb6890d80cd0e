// `shardkit bench cache`: a Zipf(0.99) load workload over 100,000 RocksDB entities with the entry
// cache (holding 10% of them) in front and without it: the hit ratios on one fixed key sequence,
// then the same sequence driven in this process at 2 and 8 client threads (--threads), then the
// cache and the store in two `shardkit serve` processes over TCP (cache_remote_bench.cc).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "cache_bench.h"
#include "shardkit/bench/allocations.h"
#include "shardkit/cache/entity_cache.h"
#include "shardkit/message/bus.h"
#include "shardkit/store/service.h"
#include "stats.h"

namespace shardkit::bench {
namespace {

using cache_bench::IdOf;
using cache_bench::Load;
using cache_bench::Percentile;
using cache_bench::Zipf;

using SteadyClock = std::chrono::steady_clock;

// Every entity's id, formatted once, side by side in one block: a client reads a load's id from
// there (separate strings cost a cache miss on a string and another on its text per cold id).
class IdTable {
 public:
  explicit IdTable(size_t n) {
    for (size_t rank = 0; rank < n; ++rank) text_ += IdOf(rank);
    width_ = n > 0 ? text_.size() / n : 0;
  }
  std::string_view operator[](size_t rank) const {
    return std::string_view(text_).substr(rank * width_, width_);
  }

 private:
  std::string text_;
  size_t width_ = 0;
};

// `clients` threads send the loads of keys [from, to), thread t those at from + t, from + t +
// clients, …, each answered before its next is sent. Returns the seconds that took. The ids are
// formatted before (`ids`, by rank), keeping the clients' own work out of the timed loop.
double DriveSequence(Bus& bus, const std::vector<uint32_t>& keys, const IdTable& ids, size_t from,
                     size_t to, int clients, std::atomic<uint64_t>& errors) {
  std::barrier sync(clients + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      sync.arrive_and_wait();
      // In-process handlers answer inline, so Act measures the request path without the cost of
      // a blocking wait (which would dominate a cache hit of well under a microsecond).
      for (size_t i = from + t; i < to; i += clients) {
        // A client has its next request's id at hand as it sends this one: fetched ahead, the
        // id's line (a random place in 1.6 MB of ids) is not a cache miss inside the timed load.
        if (i + clients < to) __builtin_prefetch(ids[keys[i + clients]].data());
        bus.Act(cache_bench::LoadOf(ids[keys[i]]), [&errors](Result<Message> r) {
          if (!r.ok()) ++errors;
        });
      }
    });
  }
  sync.arrive_and_wait();
  const auto start = SteadyClock::now();
  for (auto& t : threads) t.join();
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

std::shared_ptr<store::EntityStore> OpenStore(const std::string& path) {
  store::StoreOptions store_options;
  store_options.path = path;
  store_options.purge_interval_ms = 0;
  auto opened = store::OpenRocksDbStore(store_options);
  if (!opened.ok()) throw std::runtime_error(opened.status().ToString());
  return std::move(opened).value();
}

// A RocksDB store of `n` entities of about 90 bytes each, written in batches of 1000, then closed
// and opened again, so they sit in table files (the reopening flushes the write-ahead log) rather
// than in the memtable; the caller reads each once to bring them into the block cache.
std::shared_ptr<store::EntityStore> FilledStore(const std::string& path, size_t n) {
  {
    std::shared_ptr<store::EntityStore> entity_store = OpenStore(path);
    std::vector<store::SaveRequest> batch;
    for (size_t i = 0; i < n; ++i) {
      store::SaveRequest r;
      r.kind = "entry";
      r.id = IdOf(i);
      r.ent = fmt::format(R"({{"text":"{:0>72}","n":{}}})", i, i);
      batch.push_back(std::move(r));
      if (batch.size() == 1000 || i + 1 == n) {
        for (const auto& saved : entity_store->SaveBatch(batch))
          if (!saved.ok()) throw std::runtime_error("cache bench: " + saved.status().ToString());
        batch.clear();
      }
    }
  }
  return OpenStore(path);
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

constexpr int kHitSamples = 20'000;

// Latencies of `n` loads of the hottest key, certainly cached.
std::vector<double> HitLatenciesMs(Bus& cached, int n) {
  std::vector<double> hit_ms;
  hit_ms.reserve(n);  // no allocation of its own between the loads (`allocs_per_hit`)
  for (int i = 0; i < n; ++i) {
    auto start = SteadyClock::now();
    cached.Act(Load(0), [](Result<Message>) {});
    hit_ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count());
  }
  return hit_ms;
}

// The keys of `n` Zipf-distributed requests, from a fixed seed.
std::vector<uint32_t> KeySequence(const Zipf& zipf, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> keys(n);
  for (uint32_t& key : keys) key = static_cast<uint32_t>(zipf(rng));
  return keys;
}

// The hit ratio of a fresh cache with `policy` in front of `store`, over `keys` past `warmup`
// (each load answered before the next is sent, so the cache sees exactly this sequence).
double HitRatio(const std::shared_ptr<Handler>& store, cache::CacheOptions options,
                cache::CachePolicy policy, const std::vector<uint32_t>& keys, size_t warmup) {
  options.policy = policy;
  auto cache = cache::MakeEntityCache(options);
  Bus bus;
  Compose(bus, store, cache);
  cache::CacheStats at_warm;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i == warmup) at_warm = cache->stats();
    if (!bus.ActAndWait(Load(keys[i])).ok()) throw std::runtime_error("cache bench: a load failed");
  }
  auto end = cache->stats();
  const double hits = static_cast<double>(end.hits - at_warm.hits);
  const double misses = static_cast<double>(end.misses - at_warm.misses);
  bus.Replace(Router());
  return hits + misses > 0 ? hits / (hits + misses) : 0;
}

// Belady's offline optimum for a cache of `capacity` equal-sized entries over `keys`, counted past
// `warmup`: on a miss with the cache full, the entry used furthest in the future goes (or the
// newcomer is not kept, when it is that one).
double OptimalHitRatio(const std::vector<uint32_t>& keys, size_t capacity, size_t warmup) {
  const size_t never = keys.size();
  std::vector<size_t> next_use(keys.size());
  std::unordered_map<uint32_t, size_t> seen;
  for (size_t i = keys.size(); i-- > 0;) {
    auto it = seen.find(keys[i]);
    next_use[i] = it == seen.end() ? never : it->second;
    seen[keys[i]] = i;
  }
  std::set<std::pair<size_t, uint32_t>> by_next;  // (next use, key) of each cached key
  std::unordered_map<uint32_t, size_t> cached;    // key -> its next use
  size_t hits = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint32_t key = keys[i];
    auto it = cached.find(key);
    if (it != cached.end()) {
      hits += i >= warmup;
      by_next.erase({it->second, key});
    } else if (cached.size() >= capacity) {
      auto furthest = std::prev(by_next.end());
      if (furthest->first <= next_use[i]) continue;  // the newcomer is needed last: not kept
      cached.erase(furthest->second);
      by_next.erase(furthest);
    }
    cached[key] = next_use[i];
    by_next.insert({next_use[i], key});
  }
  return keys.size() > warmup ? static_cast<double>(hits) / (keys.size() - warmup) : 0;
}

// Loads/s without and with a fresh cache at `clients` threads over the same key sequence, and the
// hit ratio of the run with the cache, past the warm-up. The timed loads go in kSlices slices, each
// without then with the cache, so that a slow spell of a shared machine weighs on both.
struct Driven {
  double without = 0, with = 0, hit_ratio = 0;
  // The median of the slices' own speedups: a slow spell of the machine that falls on one side
  // of one slice moves it less than the ratio of the totals.
  double median_speedup = 0;
  // Allocations per timed load on each side (NaN when this program does not count them).
  double allocs_without = 0, allocs_with = 0;
};

// `allocations` per item over `items` items; NaN when this program does not count them.
double AllocsPer(uint64_t allocations, double items) {
  if (!AllocationsCounted()) return std::numeric_limits<double>::quiet_NaN();
  return items > 0 ? static_cast<double>(allocations) / items : 0;
}

Driven DriveBoth(Bus& plain, const std::shared_ptr<Handler>& service,
                 const cache::CacheOptions& cache_options, const std::vector<uint32_t>& keys,
                 const IdTable& ids, size_t warmup, int clients, std::atomic<uint64_t>& errors) {
  constexpr size_t kSlices = 8;
  auto cache = cache::MakeEntityCache(cache_options);
  Bus cached;
  Compose(cached, service, cache);
  (void)DriveSequence(plain, keys, ids, 0, warmup, clients, errors);
  (void)DriveSequence(cached, keys, ids, 0, warmup, clients, errors);
  const cache::CacheStats warm = cache->stats();
  double without_s = 0, with_s = 0;
  uint64_t allocs_without = 0, allocs_with = 0;
  std::vector<double> slice_speedups;
  const size_t slice = (keys.size() - warmup + kSlices - 1) / kSlices;
  for (size_t from = warmup; from < keys.size(); from += slice) {
    const size_t to = std::min(keys.size(), from + slice);
    const uint64_t at_start = Allocations();
    const double without_slice = DriveSequence(plain, keys, ids, from, to, clients, errors);
    const uint64_t at_middle = Allocations();
    const double with_slice = DriveSequence(cached, keys, ids, from, to, clients, errors);
    allocs_without += at_middle - at_start;
    allocs_with += Allocations() - at_middle;
    without_s += without_slice;
    with_s += with_slice;
    if (with_slice > 0) slice_speedups.push_back(without_slice / with_slice);
  }
  const cache::CacheStats end = cache->stats();
  cached.Replace(Router());
  const double timed = static_cast<double>(keys.size() - warmup);
  const double hits = static_cast<double>(end.hits - warm.hits);
  const double misses = static_cast<double>(end.misses - warm.misses);
  return {without_s > 0 ? timed / without_s : 0,
          with_s > 0 ? timed / with_s : 0,
          hits + misses > 0 ? hits / (hits + misses) : 0,
          Median(slice_speedups),
          AllocsPer(allocs_without, timed),
          AllocsPer(allocs_with, timed)};
}

}  // namespace

Figures RunCacheBench(const CacheBenchOptions& options) {
  std::string root =
      (std::filesystem::temp_directory_path() / fmt::format("shardkit-bench-cache-{}", getpid()))
          .string();
  std::filesystem::remove_all(root);
  std::shared_ptr<store::EntityStore> entity_store = FilledStore(root + "/store", options.entities);
  std::shared_ptr<Handler> service = store::MakeStoreService(entity_store);
  Bus plain;
  (void)plain.Add("store:*,kind:entry", service);
  for (size_t rank = 0; rank < options.entities; ++rank)  // into the block cache
    if (!plain.ActAndWait(Load(rank)).ok()) throw std::runtime_error("cache bench: a load failed");
  // Size the cache to hold `cached_fraction` of the entities.
  cache::CacheOptions cache_options;
  cache_options.max_bytes =
      std::max<size_t>(1, EntryBytes(service) * options.entities * options.cached_fraction);
  Zipf zipf(options.entities, options.zipf_s);
  std::atomic<uint64_t> errors{0};

  // Hit ratios on one fixed key sequence: this cache, a plain LRU of the same size, the optimum.
  const auto keys = KeySequence(zipf, options.warmup + options.requests, options.seed);
  const double hit_ratio =
      HitRatio(service, cache_options, cache::CachePolicy::kTinyLfu, keys, options.warmup);
  const double lru_hit_ratio =
      HitRatio(service, cache_options, cache::CachePolicy::kLru, keys, options.warmup);
  const double optimal_hit_ratio = OptimalHitRatio(
      keys, static_cast<size_t>(options.entities * options.cached_fraction), options.warmup);

  // The same sequence driven by each number of client threads, without and with the cache.
  const IdTable ids(options.entities);
  Figures driven;
  for (int clients : std::set<int>(options.threads.begin(), options.threads.end())) {
    const Driven d =
        DriveBoth(plain, service, cache_options, keys, ids, options.warmup, clients, errors);
    if (driven.empty()) {  // the fewest threads' run: allocations hardly depend on the count
      driven.insert(driven.end(), {{"allocs_per_load_with_cache", d.allocs_with},
                                   {"allocs_per_load_without_cache", d.allocs_without}});
    }
    driven.insert(driven.end(),
                  {{fmt::format("with_cache_per_s_{}", clients), d.with},
                   {fmt::format("without_cache_per_s_{}", clients), d.without},
                   {fmt::format("speedup_{}", clients), d.without > 0 ? d.with / d.without : 0},
                   {fmt::format("speedup_{}_slice_median", clients), d.median_speedup},
                   {fmt::format("driven_hit_ratio_{}", clients), d.hit_ratio}});
  }

  auto cache = cache::MakeEntityCache(cache_options);
  Bus cached;
  Compose(cached, service, cache);
  (void)cached.ActAndWait(Load(0));
  const uint64_t before_hits = Allocations();
  std::vector<double> hit_ms = HitLatenciesMs(cached, kHitSamples);
  const double allocs_per_hit = AllocsPer(Allocations() - before_hits, kHitSamples);
  auto [store_loads, answered] = ConcurrentMisses(service, cache_options, options.entities - 1);
  plain.Replace(Router());
  cached.Replace(Router());
  service.reset();
  entity_store.reset();

  Figures figures = {{"hit_ratio", hit_ratio},
                     {"lru_hit_ratio", lru_hit_ratio},
                     {"optimal_hit_ratio", optimal_hit_ratio}};
  figures.insert(figures.end(), driven.begin(), driven.end());
  figures.insert(figures.end(),
                 {{"hit_p50_ms", Percentile(hit_ms, 0.5)},
                  {"hit_p99_ms", Percentile(hit_ms, 0.99)},
                  {"allocs_per_hit", allocs_per_hit},
                  {"store_loads_for_100_concurrent_misses", static_cast<double>(store_loads)},
                  {"answered_of_100", static_cast<double>(answered)},
                  {"errors", static_cast<double>(errors.load())},
                  {"cache_bytes", static_cast<double>(cache_options.max_bytes)}});
  if (options.remote) {
    Figures remote =
        cache_bench::RunRemote(options, keys, root + "/store", cache_options.max_bytes);
    figures.insert(figures.end(), remote.begin(), remote.end());
  }
  std::filesystem::remove_all(root);
  return figures;
}

}  // namespace shardkit::bench
