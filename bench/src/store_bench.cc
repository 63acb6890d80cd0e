// `shardkit bench store`: store:load / store:save through the bus and the store service, against
// the raw engine (RocksDB or SQLite through its own API) on a copy of the store's own files, with
// the store's options and sync policy, the two sides interleaved in slices (raw_engine.h).
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "raw_engine.h"
#include "runner.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/keyspace.h"
#include "shardkit/store/service.h"
#include "stats.h"
#ifdef SHARDKIT_BENCH_WITH_SHARDS
#include "shardkit/shard/shard_router.h"
#endif

namespace shardkit::bench {
namespace {

constexpr char kKind[] = "entry";

std::string IdOf(uint64_t i) {
  return fmt::format("{:016x}", i * 0x9E3779B97F4A7C15ull);
}  // 16 bytes

std::string ValueOf(uint64_t i) {
  // ~100 bytes of entity JSON: a typical small entity.
  return fmt::format(R"({{"text":"{:0>72}","n":{}}})", i, i);
}

// The store's own key layout (docs/store.md): kind \0 ksid(8 bytes big-endian) id.
std::string RawKey(const std::string& id) {
  std::string key(kKind);
  key += '\0';
  uint64_t ksid = store::Ksid(id);
  for (int shift = 56; shift >= 0; shift -= 8) key += static_cast<char>((ksid >> shift) & 0xff);
  key += id;
  return key;
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

// Waits until this process's threads (RocksDB's flushes and compactions, on either side) have
// used under a tenth of a core for 300 ms, at most 60 s: a read slice timed while the previous
// slices' writes are being compacted would pay for them, and always the side that comes first.
void WaitForQuiet() {
  auto cpu_s = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    const double before = cpu_s();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (cpu_s() - before < 0.03) return;
  }
}

// Loads `n` entities into the store in batches of 1,000 (one write batch each).
void LoadStore(store::EntityStore& s, uint64_t n) {
  std::vector<store::SaveRequest> batch;
  for (uint64_t i = 0; i < n; ++i) {
    store::SaveRequest r;
    r.kind = kKind;
    r.id = IdOf(i);
    r.ent = ValueOf(i);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == n) {
      for (const auto& result : s.SaveBatch(batch)) {
        if (!result.ok())
          throw std::runtime_error("loading the store: " + result.status().ToString());
      }
      batch.clear();
    }
  }
}

// A store:load of `id`.
Message LoadOf(std::string_view id) {
  Message m;
  m.SetString("store", "load").SetString("kind", kKind).SetString("id", id);
  return m;
}

// store:load of random existing ids, each through the bus `pick(id)` returns; a failed load fails
// the benchmark.
template <typename PickBus>
std::function<void(benchmark::State&)> LoadsVia(PickBus pick, uint64_t n, uint64_t seed,
                                                const char* what) {
  return [pick, n, seed, what](benchmark::State& state) {
    std::mt19937_64 rng(seed);
    size_t failures = 0;
    AllocationMeter allocations(state);
    for (auto _ : state) {
      const std::string id = IdOf(rng() % n);
      pick(id).Act(LoadOf(id), [&](Result<Message> r) { failures += !r.ok(); });
    }
    allocations.Done();
    if (failures) state.SkipWithError(what);
    state.SetItemsProcessed(state.iterations());
  };
}

// store:load of random existing ids through `bus`.
std::function<void(benchmark::State&)> Loads(Bus& bus, uint64_t n, uint64_t seed,
                                             const char* what) {
  return LoadsVia([&bus](const std::string&) -> Bus& { return bus; }, n, seed, what);
}

// store:save of random existing ids, drawn from `rng`; `keyed`: each with a fresh idempotency key
// (a receipt read and written per save). `next_key` keeps keys unique across the runner's
// repetitions.
std::function<void(benchmark::State&)> Saves(Bus& bus, uint64_t n, bool keyed, uint64_t& next_key,
                                             std::mt19937_64& rng) {
  return [&bus, n, keyed, &next_key, &rng](benchmark::State& state) {
    size_t failures = 0;
    // One entity's text under every id, as the raw side writes one row's bytes under every key:
    // formatting a new one for each save would be the bench's work, not the store's.
    const std::string ent = ValueOf(n);
    AllocationMeter allocations(state);
    for (auto _ : state) {
      Message m;
      m.SetString("store", "save")
          .SetString("kind", kKind)
          .SetString("id", IdOf(rng() % n))
          .SetObjectJson("ent", ent);
      if (keyed) m.meta().idempotency_key = fmt::format("bench-{}", next_key++);
      bus.Act(std::move(m), [&](Result<Message> r) { failures += !r.ok(); });
    }
    allocations.Done();
    if (failures) state.SkipWithError("store:save failed");
    state.SetItemsProcessed(state.iterations());
  };
}

// The store and the raw engine, loaded with the same entities.
struct Engines {
  store::StoreOptions store_options;
  std::shared_ptr<store::EntityStore> store;
  std::unique_ptr<RawEngine> raw;
};

Result<std::unique_ptr<store::EntityStore>> OpenStore(const StoreBenchOptions& options,
                                                      const store::StoreOptions& store_options) {
  return options.backend == "sqlite" ? store::OpenSqliteStore(store_options)
                                     : store::OpenRocksDbStore(store_options);
}

// Loads the store, closes it, copies its files for the raw side and opens both: the two read
// the same rows from the same files in the same state (the load's memtable flushed at reopen by
// both alike).
Engines OpenEngines(const StoreBenchOptions& options, const std::string& root) {
  Engines e;
  e.store_options.path = root + "/store";
  e.store_options.purge_interval_ms = 0;
  // Trimming runs only where SavesWhileTrimming drives it: records older than 1 s go.
  e.store_options.feed_retention = {.retention_ms = 1'000, .max_bytes = 0, .interval_ms = 0};
  auto must = [](Result<std::unique_ptr<store::EntityStore>> opened) {
    if (!opened.ok()) throw std::runtime_error("opening the store: " + opened.status().ToString());
    return std::shared_ptr<store::EntityStore>(std::move(opened).value());
  };
  e.store = must(OpenStore(options, e.store_options));
  fmt::print(stderr, "loading {} entities into the {} store…\n", options.entities, options.backend);
  LoadStore(*e.store, options.entities);
  e.store.reset();
  std::filesystem::copy(e.store_options.path, root + "/raw",
                        std::filesystem::copy_options::recursive);
  e.store = must(OpenStore(options, e.store_options));
  e.raw = OpenRawEngine(options.backend, root + "/raw", e.store_options);
  return e;
}

// store:save calls for `seconds` on this thread; with `trim`, another thread runs a retention
// round every 100 ms meanwhile (what the scheduler does). Returns the saves per second.
double SavesWhileTrimming(Engines& e, Bus& bus, uint64_t n, bool trim, double seconds,
                          uint64_t& trimmed) {
  std::atomic<bool> stop{false};
  std::thread trimmer;
  if (trim) {
    trimmer = std::thread([&] {
      while (!stop) {
        if (auto round = e.store->feed().TrimRetained(); round.ok()) trimmed += round->trimmed;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  std::mt19937_64 rng(trim ? 3 : 4);
  uint64_t saves = 0, failures = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 100; ++i, ++saves) {
      uint64_t id = rng() % n;
      Message m;
      m.SetString("store", "save").SetString("kind", kKind).SetString("id", IdOf(id));
      m.SetObjectJson("ent", ValueOf(id + 1));
      bus.Act(std::move(m), [&](Result<Message> r) { failures += !r.ok(); });
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  if (trimmer.joinable()) trimmer.join();
  if (failures) throw std::runtime_error("store:save failed while measuring trimming");
  return saves / elapsed;
}

// Save throughput with feed trimming running against without it, interleaved on the same store:
// 5 periods of each, alternating, so drift in the machine's load hits both alike; the medians.
Figures TrimmingFigures(Engines& e, Bus& bus, uint64_t n, double seconds) {
  std::vector<double> without, with;
  uint64_t trimmed = 0;
  for (int round = 0; round < 5; ++round) {
    without.push_back(SavesWhileTrimming(e, bus, n, false, seconds, trimmed));
    with.push_back(SavesWhileTrimming(e, bus, n, true, seconds, trimmed));
  }
  const double untrimmed = Median(without), trimming = Median(with);
  return {{"save_untrimmed_per_s", untrimmed},
          {"save_trimming_per_s", trimming},
          {"save_trimming_ratio", untrimmed > 0 ? trimming / untrimmed : 0},
          {"feed_records_trimmed", static_cast<double>(trimmed)}};
}

// The store service against the raw engine, reads: on both sides' files as opened, once the
// load's flushes and compactions are over, with no write in between.
Figures RunReadFigures(Engines& e, Bus& bus, uint64_t n, const Options& bench_options) {
  auto raw_read = [&](benchmark::State& state) {
    std::mt19937_64 rng(1);
    std::string row;
    size_t misses = 0;
    for (auto _ : state) misses += !e.raw->Get(RawKey(IdOf(rng() % n)), row);
    if (misses) state.SkipWithError("raw read missed");
    state.SetItemsProcessed(state.iterations());
  };
  WaitForQuiet();
  RegisterInterleaved({{"raw_read", raw_read}, {"load", Loads(bus, n, 1, "store:load failed")}},
                      bench_options);
  auto m = RunRegistered();
  return {
      {"raw_read_per_s", m["raw_read"]},
      {"load_per_s", m["load"]},
      {"load_ratio", m["raw_read"] > 0 ? m["load"] / m["raw_read"] : 0},
      {"allocs_per_load", AllocsFigure(m, "load")},
  };
}

// The store service against the raw engine, writes and keyed writes, interleaved in slices. Each
// side draws its ids from its own generator, all three seeded alike and each going on from slice
// to slice: every side writes the same uniform sequence of ids at its own pace (restarted every
// slice, a side would write again the ids its last slice wrote, a hot set as large as one slice).
Figures RunWriteFigures(Engines& e, Bus& bus, uint64_t n, const Options& bench_options) {
  std::mt19937_64 raw_ids(2), save_ids(2), keyed_save_ids(2);
  auto raw_write = [&](benchmark::State& state) {
    size_t failures = 0;
    for (auto _ : state) failures += !e.raw->Write(RawKey(IdOf(raw_ids() % n)));
    if (failures) state.SkipWithError("raw write failed");
    state.SetItemsProcessed(state.iterations());
  };
  uint64_t next_key = 0;
  WaitForQuiet();
  RegisterInterleaved({{"raw_write", raw_write},
                       {"save", Saves(bus, n, false, next_key, save_ids)},
                       {"keyed_save", Saves(bus, n, true, next_key, keyed_save_ids)}},
                      bench_options);
  auto m = RunRegistered();
  return {
      {"raw_write_per_s", m["raw_write"]},
      {"save_per_s", m["save"]},
      {"save_ratio", m["raw_write"] > 0 ? m["save"] / m["raw_write"] : 0},
      {"keyed_save_per_s", m["keyed_save"]},
      {"keyed_save_vs_save", m["save"] > 0 ? m["keyed_save"] / m["save"] : 0},
      {"allocs_per_save", AllocsFigure(m, "save")},
      {"peak_rss_mb", PeakRssMb()},
      {"entities", static_cast<double>(n)},
  };
}

#ifdef SHARDKIT_BENCH_WITH_SHARDS
// The same entities over N RocksDB shards (each behind its guard) with a shard router in front.
struct ShardedStores {
  Bus bus;
  std::vector<std::shared_ptr<store::EntityStore>> stores;
  std::shared_ptr<shard::ShardMapHolder> map;
  // A bus per shard with only the shard's store service: the shards without router or guard.
  std::vector<std::unique_ptr<Bus>> direct;
};

// Loads as Loads does, each sent straight to the bus of its shard's store (ShardedStores::direct),
// the shard found as the router would find it: what the shards cost without the router's layer.
std::function<void(benchmark::State&)> DirectLoads(ShardedStores& shards, uint64_t n,
                                                   uint64_t seed) {
  auto pick = [&shards, map = shards.map->Current()](const std::string& id) -> Bus& {
    return *shards.direct[&map->ShardFor(store::Ksid(id)) - map->shards().data()];
  };
  return LoadsVia(pick, n, seed, "direct shard store:load failed");
}

// Loads the entities into their shards, then closes and opens each shard again, as the one store
// is (OpenEngines), so both read the load from their files rather than from its memtables.
void BuildShards(ShardedStores& out, const StoreBenchOptions& options,
                 const store::StoreOptions& store_options, const std::string& root) {
  std::vector<std::string> ranges;
  const uint64_t step = ~uint64_t{0} / options.shards + 1;
  for (int i = 0; i < options.shards; ++i) {
    ranges.push_back(shard::FormatRange({step * i, i + 1 == options.shards ? 0 : step * (i + 1)}));
  }
  auto map = std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, ranges));
  out.map = map;
  auto open = [&](const std::string& range) {
    store::StoreOptions o = store_options;
    o.path = root + "/shard" + range;
    o.rocksdb.block_cache_bytes = store_options.rocksdb.block_cache_bytes / options.shards;
    auto s = store::OpenRocksDbStore(o);
    if (!s.ok()) throw std::runtime_error(s.status().ToString());
    return std::shared_ptr<store::EntityStore>(std::move(s).value());
  };
  for (const auto& range : ranges) out.stores.push_back(open(range));
  std::vector<std::vector<store::SaveRequest>> per_shard(options.shards);
  auto flush = [&](size_t index) {
    for (const auto& result : out.stores[index]->SaveBatch(per_shard[index]))
      if (!result.ok()) throw std::runtime_error("loading a shard: " + result.status().ToString());
    per_shard[index].clear();
  };
  for (uint64_t i = 0; i < options.entities; ++i) {
    store::SaveRequest r;
    r.kind = kKind;
    r.id = IdOf(i);
    r.ent = ValueOf(i);
    size_t index = &map->Current()->ShardFor(store::Ksid(r.id)) - map->Current()->shards().data();
    per_shard[index].push_back(std::move(r));
    if (per_shard[index].size() == 1000) flush(index);
  }
  for (size_t i = 0; i < per_shard.size(); ++i) flush(i);
  for (size_t i = 0; i < ranges.size(); ++i) {
    out.stores[i].reset();
    out.stores[i] = open(ranges[i]);
    out.direct.push_back(std::make_unique<Bus>());
    if (Status added = out.direct.back()->Add("store:*", store::MakeStoreService(out.stores[i]));
        !added.ok())
      throw std::runtime_error(added.ToString());
    // The store's route, then its guard over it (reaching the store as Prior).
    std::string pattern = fmt::format("store:*,shard:\"{}\"", ranges[i]);
    Status added = out.bus.Add(pattern, store::MakeStoreService(out.stores[i]));
    if (added.ok())
      added = out.bus.Override(pattern, shard::MakeShardGuard({ranges[i], map, nullptr, nullptr}));
    if (!added.ok()) throw std::runtime_error(added.ToString());
  }
  if (Status added = out.bus.Add(
          "store:*",
          shard::MakeShardRouter({map, nullptr, std::make_shared<store::IdGenerator>(1)}));
      !added.ok())
    throw std::runtime_error(added.ToString());
}

// Loads of random existing ids from `threads` threads at once for `seconds`; loads per second.
double ThreadedLoads(Bus& bus, uint64_t n, int threads, double seconds) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> loads{0}, failures{0};
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(10 + t);
      uint64_t mine = 0, failed = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        bus.Act(LoadOf(IdOf(rng() % n)), [&failed](Result<Message> r) { failed += !r.ok(); });
        ++mine;
      }
      loads += mine;
      failures += failed;
    });
  }
  std::this_thread::sleep_until(start + std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& worker : workers) worker.join();
  if (failures > 0) throw std::runtime_error("store:load failed while loading from threads");
  return loads / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The one store against the shards, each loaded from `threads` threads at once, in turns:
// the router's shared state (the shard map, the routing table) read by threads together.
Figures ThreadedShardedFigures(Bus& single, Bus& sharded, uint64_t n, int threads,
                               const Options& bench_options) {
  std::vector<double> one, routed;
  for (int slice = 0; slice < bench_options.repetitions; ++slice) {
    one.push_back(ThreadedLoads(single, n, threads, bench_options.min_time_s));
    routed.push_back(ThreadedLoads(sharded, n, threads, bench_options.min_time_s));
  }
  const double single_per_s = Median(one), sharded_per_s = Median(routed);
  return {{"threaded_single_load_per_s", single_per_s},
          {"threaded_sharded_load_per_s", sharded_per_s},
          {"threaded_sharded_ratio", single_per_s > 0 ? sharded_per_s / single_per_s : 0},
          {"load_threads", static_cast<double>(threads)}};
}

// Routed loads over the shards against loads from the one store, and list latency.
Figures RunShardedFigures(Bus& single, const StoreBenchOptions& options,
                          const store::StoreOptions& store_options, const std::string& root,
                          const Options& bench_options) {
  ShardedStores sharded;
  BuildShards(sharded, options, store_options, root);
  WaitForQuiet();  // the shards' flushes and compactions after their load
  const uint64_t n = options.entities;
  RegisterInterleaved({{"single_load", Loads(single, n, 3, "store:load failed")},
                       {"direct_load", DirectLoads(sharded, n, 3)},
                       {"sharded_load", Loads(sharded.bus, n, 3, "sharded store:load failed")}},
                      bench_options);
  auto sm = RunRegistered();
  std::vector<double> list_ms;
  for (int i = 0; i < 300; ++i) {
    Message msg;
    msg.SetString("store", "list").SetString("kind", kKind).SetObjectJson("q", R"({"limit$":20})");
    auto start = std::chrono::steady_clock::now();
    auto r = sharded.bus.ActAndWait(std::move(msg));
    list_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
    if (!r.ok()) throw std::runtime_error("sharded list: " + r.status().ToString());
  }
  std::sort(list_ms.begin(), list_ms.end());
  Figures threaded =
      ThreadedShardedFigures(single, sharded.bus, n, options.load_threads, bench_options);
  sharded.bus.Replace(Router());
  Figures figures = {
      {"single_shard_load_per_s", sm["single_load"]},
      {"sharded_load_per_s", sm["sharded_load"]},
      {"sharded_ratio", sm["single_load"] > 0 ? sm["sharded_load"] / sm["single_load"] : 0},
      {"direct_shards_load_per_s", sm["direct_load"]},
      {"direct_shards_ratio", sm["single_load"] > 0 ? sm["direct_load"] / sm["single_load"] : 0},
      {"allocs_per_sharded_load", AllocsFigure(sm, "sharded_load")},
      {"list_p50_ms", list_ms[list_ms.size() / 2]},
      {"list_p99_ms", list_ms[list_ms.size() * 99 / 100]},
      {"shards", static_cast<double>(options.shards)},
  };
  figures.insert(figures.end(), threaded.begin(), threaded.end());
  return figures;
}
#endif

}  // namespace

Figures RunStoreBench(const StoreBenchOptions& options) {
  const std::string root = options.dir.empty() ? (std::filesystem::temp_directory_path() /
                                                  fmt::format("shardkit-bench-store-{}", getpid()))
                                                     .string()
                                               : options.dir;
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  Engines engines = OpenEngines(options, root);
  Bus bus;
  if (Status s =
          bus.Add("store:*,kind:entry", store::MakeStoreService(engines.store), "entry-store");
      !s.ok()) {
    throw std::runtime_error(s.ToString());
  }
  Options bench_options{
      .repetitions = options.repetitions, .min_time_s = options.min_time_s, .patrun_script = {}};
  // Every read comparison before the first write: the one store and the shards as loaded.
  Figures figures = RunReadFigures(engines, bus, options.entities, bench_options);
  auto add = [&figures](Figures more) {
    for (auto& figure : more) figures.push_back(std::move(figure));
  };
#ifdef SHARDKIT_BENCH_WITH_SHARDS
  if (options.shards > 1)
    add(RunShardedFigures(bus, options, engines.store_options, root, bench_options));
#endif
  add(RunWriteFigures(engines, bus, options.entities, bench_options));
  add(TrimmingFigures(engines, bus, options.entities, std::max(1.0, options.min_time_s)));
  bus.Replace(Router());
  engines = Engines();
  if (options.dir.empty()) std::filesystem::remove_all(root);
  return figures;
}

}  // namespace shardkit::bench
