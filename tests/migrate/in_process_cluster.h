// In-process fixtures of the migration tests: shards on one bus (each a store behind a guard with
// a write gate, a router in front) and client threads whose acknowledged outcomes are checked.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/migrate/migration.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/service.h>

namespace shardkit::migrate::inproc {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "shardkit-migrate-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class Engine { kRocksDb, kSqlite, kMemory };

// Shards on one bus: each a store behind a guard with a write gate; a router in front.
class Cluster {
 public:
  explicit Cluster(const std::vector<std::string>& ranges)
      : map_(std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, ranges))),
        router_map_(std::make_shared<shard::ShardMapHolder>(*shard::ShardMap::Make(1, ranges))) {
    for (const auto& r : ranges) AddShard(r, Engine::kRocksDb);
    auto refresh = [map = map_]() -> Result<shard::ShardMap> { return *map->Current(); };
    EXPECT_TRUE(
        bus.Add("store:*", shard::MakeShardRouter(
                               {router_map_, refresh, std::make_shared<store::IdGenerator>(1)}))
            .ok());
  }

  Participant AddShard(const std::string& range, Engine engine) {
    store::StoreOptions options;
    options.path = dir_.path() + "/" + range;
    options.durability = store::Durability::kNone;
    options.purge_interval_ms = 0;
    options.rocksdb.block_cache_bytes = size_t{8} << 20;
    auto opened = engine == Engine::kSqlite   ? store::OpenSqliteStore(options)
                  : engine == Engine::kMemory ? store::NewMemoryStore(options)
                                              : store::OpenRocksDbStore(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    Participant p{range, std::move(opened).value(), std::make_shared<shard::WriteGate>()};
    auto refresh = [map = map_]() -> Result<shard::ShardMap> { return *map->Current(); };
    // The store's route, then its guard over it (which reaches the store as Prior).
    std::string pattern = fmt::format("store:*,shard:\"{}\"", range);
    EXPECT_TRUE(bus.Add(pattern, store::MakeStoreService(p.store)).ok());
    EXPECT_TRUE(bus.Override(pattern, shard::MakeShardGuard({range, map_, refresh, p.gate})).ok());
    shards[range] = p;
    return p;
  }

  MigrationSpec Spec(std::string id, std::vector<Participant> sources,
                     std::vector<Participant> targets) {
    MigrationSpec spec;
    spec.id = std::move(id);
    spec.sources = std::move(sources);
    spec.targets = std::move(targets);
    spec.map = map_;
    spec.journal_path = dir_.path() + "/" + spec.id + ".journal";
    return spec;
  }

  Result<Message> Act(const std::string& json) {
    return bus.ActAndWait(std::move(ParseMessage(json)).value(), 10s);
  }

  TempDir dir_;
  std::shared_ptr<shard::ShardMapHolder> map_;         // the authority (shards and migrations)
  std::shared_ptr<shard::ShardMapHolder> router_map_;  // the router's possibly stale copy
  std::map<std::string, Participant> shards;
  Bus bus;
};

inline std::string EntField(const Result<Message>& r, const char* field) {
  if (!r.ok()) return "";
  rapidjson::Document d;
  auto ent = r->GetObjectJson("ent").value_or("{}");
  d.Parse(ent.data(), ent.size());
  return d.HasMember(field) && d[field].IsString() ? d[field].GetString() : "";
}

// Client threads: unique-value saves, loads, removes, and single-owner append keys.
class Workload {
 public:
  Workload(Cluster& cluster, int threads) : cluster_(cluster) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  ~Workload() {
    if (!threads_.empty()) Stop();
  }

  // Checks every acknowledged outcome against the cluster after the run.
  void Verify() {
    for (const auto& [id, value] : saved_) {
      auto r = cluster_.Act(fmt::format(R"({{"store":"load","kind":"item","id":"{}"}})", id));
      if (value.empty()) {
        EXPECT_EQ(r.ok() ? Code::kOk : r.status().code(), Code::kNotFound) << id << " was removed";
      } else {
        EXPECT_EQ(EntField(r, "v"), value) << id;
      }
    }
    for (const auto& [id, text] : appended_) {
      auto r = cluster_.Act(fmt::format(R"({{"store":"load","kind":"log","id":"{}"}})", id));
      EXPECT_EQ(EntField(r, "text"), text) << id;
    }
  }

  std::atomic<int> errors{0};
  std::atomic<int> ops{0};
  std::atomic<int> writes{0};  // saves and removes sent, acknowledged or not
  std::vector<std::string> error_samples;

 private:
  void Fail(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    ++errors;
    if (error_samples.size() < 5) error_samples.push_back(s.ToString());
  }

  void Run(int t) {
    std::mt19937 rng(t);
    std::map<std::string, std::string> mine_saved, mine_appended;
    const std::string log_id = fmt::format("log-{}", t);
    std::string log_text;
    for (int i = 0; !stop_ && i < 1'000'000; ++i) {
      int dice = rng() % 10;
      if (dice < 4) {
        std::string id = fmt::format("t{}-{}", t, rng() % 200);
        std::string value = fmt::format("{}-{}", t, i);
        ++writes;
        auto r = cluster_.Act(fmt::format(
            R"({{"store":"save","kind":"item","ent":{{"id":"{}","v":"{}"}}}})", id, value));
        if (r.ok()) {
          mine_saved[id] = value;
        } else {
          Fail(r.status());
        }
      } else if (dice < 6) {
        std::string piece = fmt::format("{},", i);
        ++writes;
        auto r = cluster_.Act(
            fmt::format(R"({{"store":"save","kind":"log","ent":{{"id":"{}","text":"{}"}}}})",
                        log_id, log_text + piece));
        if (r.ok()) {
          log_text += piece;
        } else {
          Fail(r.status());
        }
      } else if (dice < 7) {
        std::string id = fmt::format("t{}-{}", t, rng() % 200);
        ++writes;
        auto r = cluster_.Act(fmt::format(R"({{"store":"remove","kind":"item","id":"{}"}})", id));
        if (r.ok() || r.status().code() == Code::kNotFound) {
          mine_saved[id] = "";
        } else {
          Fail(r.status());
        }
      } else {
        std::string id = fmt::format("t{}-{}", t, rng() % 200);
        auto r = cluster_.Act(fmt::format(R"({{"store":"load","kind":"item","id":"{}"}})", id));
        if (!r.ok() && r.status().code() != Code::kNotFound) Fail(r.status());
        if (r.ok() && mine_saved.count(id) && EntField(r, "v") != mine_saved[id]) {
          Fail(Status::Internal(fmt::format("read {} = {}, last acknowledged {}", id,
                                            EntField(r, "v"), mine_saved[id])));
        }
      }
      ++ops;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, v] : mine_saved) saved_[k] = v;
    appended_[log_id] = log_text;
  }

  Cluster& cluster_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, std::string> saved_, appended_;
};

inline void WaitOps(const Workload& w, int more) {
  int target = w.ops + more;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (w.ops < target && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
}

}  // namespace shardkit::migrate::inproc
