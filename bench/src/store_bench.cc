// `shardkit bench store`: store:load / store:save through the bus and the store service, against
// the raw engine (RocksDB or SQLite, its own API, same options, same keys) in the same run.
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <filesystem>
#include <random>

#include "runner.h"
#include "shardkit/bench/bench.h"
#include "shardkit/message/bus.h"
#include "shardkit/store/entity_store.h"
#include "shardkit/store/keyspace.h"
#include "shardkit/store/service.h"
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

// The raw engine under the same options as the store's defaults.
class RawEngine {
 public:
  virtual ~RawEngine() = default;
  virtual void Load(uint64_t n) = 0;
  virtual bool Get(const std::string& key, std::string& value) = 0;
  virtual bool Put(const std::string& key, const std::string& value) = 0;
};

class RawRocksDb final : public RawEngine {
 public:
  explicit RawRocksDb(const std::string& path, const store::RocksDbTuning& tuning) {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.max_background_jobs = tuning.max_background_jobs;
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(tuning.bloom_bits_per_key));
    table.block_cache = rocksdb::NewLRUCache(tuning.block_cache_bytes);
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, path, &db);
    if (!s.ok()) throw std::runtime_error("raw rocksdb: " + s.ToString());
    db_.reset(db);
  }
  void Load(uint64_t n) override {
    rocksdb::WriteBatch batch;
    for (uint64_t i = 0; i < n; ++i) {
      batch.Put(RawKey(IdOf(i)), ValueOf(i));
      if (batch.Count() == 1000) {
        db_->Write(rocksdb::WriteOptions(), &batch);
        batch.Clear();
      }
    }
    db_->Write(rocksdb::WriteOptions(), &batch);
    db_->Flush(rocksdb::FlushOptions());
  }
  bool Get(const std::string& key, std::string& value) override {
    return db_->Get(rocksdb::ReadOptions(), key, &value).ok();
  }
  bool Put(const std::string& key, const std::string& value) override {
    return db_->Put(rocksdb::WriteOptions(), key, value).ok();  // sync=false, as kGroup writes
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

class RawSqlite final : public RawEngine {
 public:
  explicit RawSqlite(const std::string& path) {
    std::filesystem::create_directories(path);
    if (sqlite3_open((path + "/raw.db").c_str(), &db_) != SQLITE_OK)
      throw std::runtime_error("raw sqlite: open");
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");  // as kGroup
    Exec("PRAGMA cache_size=-16384");
    Exec("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
    sqlite3_prepare_v2(db_, "SELECT v FROM kv WHERE k = ?", -1, &get_, nullptr);
    sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", -1, &put_, nullptr);
  }
  ~RawSqlite() override {
    sqlite3_finalize(get_);
    sqlite3_finalize(put_);
    sqlite3_close(db_);
  }
  void Load(uint64_t n) override {
    Exec("BEGIN");
    for (uint64_t i = 0; i < n; ++i) {
      Put(RawKey(IdOf(i)), ValueOf(i));
      if (i % 10000 == 9999) {
        Exec("COMMIT");
        Exec("BEGIN");
      }
    }
    Exec("COMMIT");
  }
  bool Get(const std::string& key, std::string& value) override {
    sqlite3_bind_blob(get_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    bool found = sqlite3_step(get_) == SQLITE_ROW;
    if (found)
      value.assign(static_cast<const char*>(sqlite3_column_blob(get_, 0)),
                   sqlite3_column_bytes(get_, 0));
    sqlite3_reset(get_);
    return found;
  }
  bool Put(const std::string& key, const std::string& value) override {
    sqlite3_bind_blob(put_, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(put_, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    bool ok = sqlite3_step(put_) == SQLITE_DONE;
    sqlite3_reset(put_);
    return ok;
  }

 private:
  void Exec(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* put_ = nullptr;
};

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

}  // namespace

Figures RunStoreBench(const StoreBenchOptions& options) {
  const std::string root = options.dir.empty() ? (std::filesystem::temp_directory_path() /
                                                  fmt::format("shardkit-bench-store-{}", getpid()))
                                                     .string()
                                               : options.dir;
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);

  store::StoreOptions store_options;
  store_options.path = root + "/store";
  store_options.purge_interval_ms = 0;
  Result<std::unique_ptr<store::EntityStore>> opened = options.backend == "sqlite"
                                                           ? store::OpenSqliteStore(store_options)
                                                           : store::OpenRocksDbStore(store_options);
  if (!opened.ok()) throw std::runtime_error("opening the store: " + opened.status().ToString());
  std::shared_ptr<store::EntityStore> entity_store = std::move(opened).value();
  std::unique_ptr<RawEngine> raw;
  if (options.backend == "sqlite") {
    raw = std::make_unique<RawSqlite>(root + "/raw");
  } else {
    raw = std::make_unique<RawRocksDb>(root + "/raw", store_options.rocksdb);
  }

  fmt::print(stderr, "loading {} entities into the {} store and the raw engine…\n",
             options.entities, options.backend);
  LoadStore(*entity_store, options.entities);
  raw->Load(options.entities);

  Bus bus;
  if (Status s =
          bus.Add("store:*,kind:entry", store::MakeStoreService(entity_store), "entry-store");
      !s.ok()) {
    throw std::runtime_error(s.ToString());
  }

  const uint64_t n = options.entities;
  auto random_index = [n](std::mt19937_64& rng) { return rng() % n; };
  Options bench_options{options.repetitions, options.min_time_s};

  Register(
      "raw_read",
      [&](benchmark::State& state) {
        std::mt19937_64 rng(1);
        std::string value;
        size_t misses = 0;
        for (auto _ : state) misses += !raw->Get(RawKey(IdOf(random_index(rng))), value);
        if (misses) state.SkipWithError("raw read missed");
        state.SetItemsProcessed(state.iterations());
      },
      bench_options);
  Register(
      "load",
      [&](benchmark::State& state) {
        std::mt19937_64 rng(1);
        size_t failures = 0;
        for (auto _ : state) {
          Message m;
          m.SetString("store", "load")
              .SetString("kind", kKind)
              .SetString("id", IdOf(random_index(rng)));
          bus.Act(std::move(m), [&](Result<Message> r) { failures += !r.ok(); });
        }
        if (failures) state.SkipWithError("store:load failed");
        state.SetItemsProcessed(state.iterations());
      },
      bench_options);
  Register(
      "raw_write",
      [&](benchmark::State& state) {
        std::mt19937_64 rng(2);
        size_t failures = 0;
        for (auto _ : state) {
          uint64_t i = random_index(rng);
          failures += !raw->Put(RawKey(IdOf(i)), ValueOf(i + 1));
        }
        if (failures) state.SkipWithError("raw write failed");
        state.SetItemsProcessed(state.iterations());
      },
      bench_options);
  // store:save of random existing ids; `keyed`: each with a fresh idempotency key (a receipt
  // read and written per save).
  uint64_t next_key = 0;  // keys stay unique across the runner's repetitions
  auto saves = [&](bool keyed) {
    return [&, keyed](benchmark::State& state) {
      std::mt19937_64 rng(2);
      size_t failures = 0;
      for (auto _ : state) {
        uint64_t i = random_index(rng);
        Message m;
        m.SetString("store", "save")
            .SetString("kind", kKind)
            .SetString("id", IdOf(i))
            .SetObjectJson("ent", ValueOf(i + 1));
        if (keyed) m.meta().idempotency_key = fmt::format("bench-{}", next_key++);
        bus.Act(std::move(m), [&](Result<Message> r) { failures += !r.ok(); });
      }
      if (failures) state.SkipWithError("store:save failed");
      state.SetItemsProcessed(state.iterations());
    };
  };
  Register("save", saves(false), bench_options);
  Register("keyed_save", saves(true), bench_options);
  auto m = RunRegistered();

  Figures figures = {
      {"raw_read_per_s", m["raw_read"]},
      {"raw_write_per_s", m["raw_write"]},
      {"load_per_s", m["load"]},
      {"save_per_s", m["save"]},
      {"load_ratio", m["raw_read"] > 0 ? m["load"] / m["raw_read"] : 0},
      {"save_ratio", m["raw_write"] > 0 ? m["save"] / m["raw_write"] : 0},
      {"keyed_save_per_s", m["keyed_save"]},
      {"keyed_save_vs_save", m["save"] > 0 ? m["keyed_save"] / m["save"] : 0},
      {"peak_rss_mb", PeakRssMb()},
      {"entities", static_cast<double>(n)},
  };
#ifdef SHARDKIT_BENCH_WITH_SHARDS
  if (options.shards > 1) {
    // The same entities over N RocksDB shards behind the shard router, against the one store.
    std::vector<std::string> ranges;
    const uint64_t step = ~uint64_t{0} / options.shards + 1;
    for (int i = 0; i < options.shards; ++i) {
      ranges.push_back(
          shard::FormatRange({step * i, i + 1 == options.shards ? 0 : step * (i + 1)}));
    }
    auto map = std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, ranges));
    Bus sharded;
    std::vector<std::shared_ptr<store::EntityStore>> stores;
    for (const auto& range : ranges) {
      store::StoreOptions o = store_options;
      o.path = root + "/shard" + range;
      o.rocksdb.block_cache_bytes = store_options.rocksdb.block_cache_bytes / options.shards;
      auto s = store::OpenRocksDbStore(o);
      if (!s.ok()) throw std::runtime_error(s.status().ToString());
      stores.push_back(std::move(s).value());
      (void)sharded.Add(fmt::format("store:*,shard:\"{}\"", range),
                        shard::MakeShardGuard({range, map, nullptr, nullptr},
                                              store::MakeStoreService(stores.back())));
    }
    (void)sharded.Add(
        "store:*", shard::MakeShardRouter({map, nullptr, std::make_shared<store::IdGenerator>(1)}));
    std::vector<std::vector<store::SaveRequest>> per_shard(options.shards);
    for (uint64_t i = 0; i < n; ++i) {
      store::SaveRequest r;
      r.kind = kKind;
      r.id = IdOf(i);
      r.ent = ValueOf(i);
      size_t index = &map->Current()->ShardFor(store::Ksid(r.id)) - map->Current()->shards().data();
      per_shard[index].push_back(std::move(r));
      if (per_shard[index].size() == 1000) {
        (void)stores[index]->SaveBatch(per_shard[index]);
        per_shard[index].clear();
      }
    }
    for (size_t i = 0; i < per_shard.size(); ++i) (void)stores[i]->SaveBatch(per_shard[i]);
    Register(
        "single_load",
        [&](benchmark::State& state) {
          std::mt19937_64 rng(3);
          for (auto _ : state) {
            Message msg;
            msg.SetString("store", "load")
                .SetString("kind", kKind)
                .SetString("id", IdOf(random_index(rng)));
            bus.Act(std::move(msg), [](Result<Message>) {});
          }
          state.SetItemsProcessed(state.iterations());
        },
        bench_options);
    Register(
        "sharded_load",
        [&](benchmark::State& state) {
          std::mt19937_64 rng(3);
          size_t failures = 0;
          for (auto _ : state) {
            Message msg;
            msg.SetString("store", "load")
                .SetString("kind", kKind)
                .SetString("id", IdOf(random_index(rng)));
            sharded.Act(std::move(msg), [&](Result<Message> r) { failures += !r.ok(); });
          }
          if (failures) state.SkipWithError("sharded store:load failed");
          state.SetItemsProcessed(state.iterations());
        },
        bench_options);
    auto sm = RunRegistered();
    std::vector<double> list_ms;
    for (int i = 0; i < 300; ++i) {
      Message msg;
      msg.SetString("store", "list")
          .SetString("kind", kKind)
          .SetObjectJson("q", R"({"limit$":20})");
      auto start = std::chrono::steady_clock::now();
      auto r = sharded.ActAndWait(std::move(msg));
      list_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      if (!r.ok()) throw std::runtime_error("sharded list: " + r.status().ToString());
    }
    std::sort(list_ms.begin(), list_ms.end());
    figures.push_back({"single_shard_load_per_s", sm["single_load"]});
    figures.push_back({"sharded_load_per_s", sm["sharded_load"]});
    figures.push_back(
        {"sharded_ratio", sm["single_load"] > 0 ? sm["sharded_load"] / sm["single_load"] : 0});
    figures.push_back({"list_p50_ms", list_ms[list_ms.size() / 2]});
    figures.push_back({"list_p99_ms", list_ms[list_ms.size() * 99 / 100]});
    figures.push_back({"shards", static_cast<double>(options.shards)});
    sharded.Replace(Router());
  }
#endif
  bus.Replace(Router());
  entity_store.reset();
  raw.reset();
  if (options.dir.empty()) std::filesystem::remove_all(root);
  return figures;
}

}  // namespace shardkit::bench
