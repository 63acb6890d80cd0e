// The proof of live migration with real processes (issue: live shard split, merge and replace).
//
// Two `shardkit serve` processes: the *storage* node (the authoritative shard map, four RocksDB
// shards -40, 40-80, 80-c0, c0-, the migration targets and the migrator) and the *router* node (a
// shard-map follower of the storage node's map and a shard router; every shard message goes to the
// storage node over TCP). Client threads in this process talk only to the router, over TCP:
// saves of unique values, loads and removes on shared keys (many writers per key) and appends on
// single-owner keys. Every operation is recorded with its call and return times.
//
// While they run, the migration is driven by migrate:* messages to the storage node: start (copy,
// catch-up), verify, cutover, rollback, cutover again, complete. Then both processes are killed
// with SIGKILL and restarted, every key is read back, and:
//   - no client saw an error (the router's map is stale after each switch: it gets wrong_shard,
//     pulls the new map and retries, invisibly);
//   - every key's history is linearizable (linearizability.h), final reads included, so every
//     acknowledged write is present at its final value;
//   - every append key equals the concatenation of its acknowledged appends;
//   - with the processes stopped, the stores' files are opened directly: the targets together
//     hold exactly what the sources hold in the moved range, and no shard holds a key outside
//     its range.
// Repeated as a split, a replace RocksDB -> SQLite and a merge. The crash variants kill the
// storage node (the coordinator, the sources and the targets) at every journal state of the
// workflow with a crash point (SHARDKIT_CRASH_POINT), restart it — the migrator resumes from its
// journal — finish the migration and check the same properties, the operations interrupted by the
// crash counting as outcome unknown.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../services/serve_process.h"
#include "linearizability.h"
#include "shardkit/message/json.h"
#include "shardkit/shard/shard_map.h"
#include "shardkit/store/entity_store.h"

namespace shardkit::migrate::testing {
namespace {

using services::CallAndWait;
using services::ClientOptions;
using services::IoRuntime;
using services::testing::Client;
using services::testing::Msg;
using services::testing::ServeProcess;
using services::testing::TempDir;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kInitialShards = {"-40", "40-80", "80-c0", "c0-"};

struct Variant {
  std::string name;
  std::vector<std::string> sources;
  std::vector<std::string> targets;
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::string JsonList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += fmt::format("{}\"{}\"", i ? "," : "", names[i]);
  return out + "]";
}

std::string Backend(const std::string& shard) {
  return shard.find("@sqlite") != std::string::npos ? "sqlite" : "rocksdb";
}

// A directory name for a shard ("40-80@sqlite" -> "40-80_sqlite").
std::string DirName(std::string shard) {
  std::replace(shard.begin(), shard.end(), '@', '_');
  return shard.empty() || shard == "-" ? "all" : shard;
}

// `n` distinct ports free now (all bound at once, then released), so restarted nodes come back
// where their peers expect. Bound together: one at a time, the kernel may hand out the same port
// twice.
std::vector<uint16_t> FreePorts(size_t n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

std::string StorageConfig(const std::string& data, uint16_t port, const Variant& v) {
  std::string toml = fmt::format(R"(
[node]
name = "storage"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{}"
[[service]]
name = "map"
type = "shard-map"
ranges = {}
path = "{}/map.json"
)",
                                 port, JsonList(kInitialShards), data);
  std::vector<std::string> shards = kInitialShards;
  for (const auto& t : v.targets) shards.push_back(t);
  for (const auto& shard : shards) {
    toml += fmt::format(R"(
[[service]]
name = "store-{0}"
type = "store"
backend = "{1}"
path = "{2}/{3}"
shard = "{0}"
)",
                        shard, Backend(shard), data, DirName(shard));
  }
  toml += fmt::format(R"(
[[service]]
name = "migrator"
type = "migrator"
dir = "{}/migrations"
)",
                      data);
  return toml;
}

std::string RouterConfig(const std::string& storage_url, uint16_t port) {
  return fmt::format(R"(
[node]
name = "router"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{1}"
[[service]]
name = "map"
type = "shard-map"
from = "{0}"
refresh_ms = 0
[[service]]
name = "router"
type = "shard-router"
node_id = 1
[[route]]
pattern = "store:*,kind:*,shard:*"
to = "{0}"
timeout_ms = 5000
)",
                     storage_url, port);
}

// One recorded operation on one key.
struct Recorded {
  std::string key;
  RegisterOp op;
};

std::optional<std::string> ValueOf(const Message& reply) {
  auto ent = reply.GetObjectJson("ent");
  if (!ent) return std::nullopt;
  auto doc = ParseJson(*ent, "ent");
  if (!doc.ok() || !(*doc)["v"].IsString()) return std::nullopt;
  return std::string((*doc)["v"].GetString());
}

class LiveMigrationProcesses {
 public:
  explicit LiveMigrationProcesses(Variant variant) : variant_(std::move(variant)) {
    data_ = data_dir_.path();
  }
  ~LiveMigrationProcesses() { StopTraffic(); }

  // --- processes ----------------------------------------------------------------------------
  void StartStorage(const char* crash_point = nullptr) {
    std::string config =
        storage_dir_.Write("storage.toml", StorageConfig(data_, storage_port_, variant_));
    if (crash_point) setenv("SHARDKIT_CRASH_POINT", crash_point, 1);
    storage_ = std::make_unique<ServeProcess>(storage_dir_, config);
    if (crash_point) unsetenv("SHARDKIT_CRASH_POINT");
    auto urls = storage_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    storage_url_ = urls[0];
    ClientOptions options;
    options.timeout = std::chrono::seconds(60);  // a copy or a cutover may take a while
    options.connections = 1;
    admin_ = Client(admin_runtime_, storage_url_, options);
  }
  void StartRouter() {
    std::string config = router_dir_.Write("router.toml", RouterConfig(storage_url_, router_port_));
    router_ = std::make_unique<ServeProcess>(router_dir_, config);
    auto urls = router_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    router_url_ = urls[0];
  }
  void KillAll() {
    for (auto* p : {router_.get(), storage_.get()}) {
      if (!p) continue;
      p->Signal(SIGKILL);
      p->WaitExit(std::chrono::seconds(10));
    }
    router_.reset();
    storage_.reset();
  }
  ServeProcess& storage() { return *storage_; }
  void KillRouter() {
    router_->Signal(SIGKILL);
    router_->WaitExit(std::chrono::seconds(10));
    router_.reset();
  }
  std::string logs() const {
    return "--- storage log ---\n" + (storage_ ? storage_->log() : std::string("(gone)")) +
           "\n--- router log ---\n" + (router_ ? router_->log() : std::string("(gone)"));
  }

  // --- the migration ------------------------------------------------------------------------
  Result<Message> Migrate(const std::string& op) {
    std::string extra;
    if (op == "start") {
      extra = fmt::format(R"(,"sources":{},"targets":{})", JsonList(variant_.sources),
                          JsonList(variant_.targets));
    }
    return CallAndWait(*admin_, Msg(fmt::format(R"({{"migrate":"{}","id":"m1"{}}})", op, extra)));
  }
  // Polls status until the copy has finished; the final status.
  Result<Message> WaitCopied(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    auto until = Clock::now() + timeout;
    Result<Message> status = Status::Timeout("never asked");
    while (Clock::now() < until) {
      status = Migrate("status");
      if (!status.ok() && status.status().code() != Code::kNotFound) return status;
      if (status.ok() && status->GetBool("copying") == std::optional<bool>(false)) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return status;
  }
  Result<Message> WaitLag(uint64_t lag, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto until = Clock::now() + timeout;
    Result<Message> status = Status::Timeout("never asked");
    while (Clock::now() < until) {
      status = Migrate("status");
      if (status.ok() && status->GetUint("lag").value_or(~0ull) <= lag) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status;
  }

  // --- clients --------------------------------------------------------------------------------
  void Preload(int entities) {
    std::vector<std::thread> loaders;
    std::atomic<int> failed{0};
    std::mutex mu;
    for (int t = 0; t < 8; ++t) {
      loaders.emplace_back([&, t] {
        auto client = Client(client_runtime_, router_url_);
        for (int i = t; i < entities; i += 8) {
          // k0…: the shared keys the clients work on; bulk…: volume for the copy.
          std::string key = i < kSharedKeys ? fmt::format("k{}", i) : fmt::format("bulk{}", i);
          std::string value = fmt::format("pre{}", i);
          auto r = CallAndWait(
              *client,
              Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})",
                              key, value)));
          if (!r.ok()) {
            ++failed;
          } else if (i < kSharedKeys) {
            std::lock_guard<std::mutex> lock(mu);
            initial_[key] = value;
          }
        }
      });
    }
    for (auto& t : loaders) t.join();
    ASSERT_EQ(failed.load(), 0);
  }

  void StartTraffic(int clients, int ops_per_s_each) {
    stop_ = false;
    for (int c = 0; c < clients; ++c) {
      workers_.emplace_back([this, c, ops_per_s_each] { Work(c, ops_per_s_each); });
    }
  }
  void StopTraffic() {
    stop_ = true;
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // Reads every key back through the router (after the restart) and adds the reads to the
  // histories; then checks linearizability and the append keys.
  void CheckHistories() {
    auto client = Client(client_runtime_, router_url_);
    std::map<std::string, std::vector<RegisterOp>> by_key;
    for (auto& r : recorded_) by_key[r.key].push_back(r.op);
    for (int i = 0; i < kSharedKeys; ++i) by_key[fmt::format("k{}", i)];
    size_t checked_ops = 0;
    for (auto& [key, history] : by_key) {
      int64_t call = Now();
      auto r = CallAndWait(*client,
                           Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", key)));
      int64_t ret = Now();
      ASSERT_TRUE(r.ok() || r.status().code() == Code::kNotFound)
          << key << ": " << r.status().ToString();
      std::optional<std::string> value = r.ok() ? ValueOf(*r) : std::nullopt;
      if (r.ok()) {
        ASSERT_TRUE(value.has_value()) << key << ": " << ToJson(*r);
      }
      history.push_back({RegisterOp::Kind::kLoad, call, ret, value});
      auto initial = initial_.find(key);
      auto result = CheckRegister(history, initial == initial_.end()
                                               ? std::nullopt
                                               : std::optional<std::string>(initial->second));
      checked_ops += result.operations;
      EXPECT_TRUE(result.ok) << "key " << key << ": " << result.explanation;
      auto append = appends_.find(key);
      if (append != appends_.end()) {
        const AppendKey& a = append->second;
        bool exact = value == a.acknowledged;
        bool with_unknown = a.unknown && value == *a.unknown;
        EXPECT_TRUE(exact || with_unknown)
            << "append key " << key << " is " << value.value_or("absent") << ", acknowledged "
            << a.acknowledged.value_or("absent");
      }
    }
    checked_ops_ = checked_ops;
  }

  // With the processes stopped: the stores' files, opened directly. `quiesced`: the migration
  // completed with no traffic and no replication lag, so sources and targets must agree.
  void CheckStoreFiles(bool quiesced = true) {
    std::map<std::string, std::vector<store::EntityRecord>> contents;
    std::vector<std::string> shards = kInitialShards;
    for (const auto& t : variant_.targets) shards.push_back(t);
    for (const auto& shard : shards) {
      store::StoreOptions options;
      options.path = data_ + "/" + DirName(shard);
      auto opened = Backend(shard) == "sqlite" ? store::OpenSqliteStore(options)
                                               : store::OpenRocksDbStore(options);
      ASSERT_TRUE(opened.ok()) << shard << ": " << opened.status().ToString();
      auto range = shard::ParseRange(shard.substr(0, shard.find('@')));
      ASSERT_TRUE(range.ok());
      std::vector<store::EntityRecord>& records = contents[shard];
      ASSERT_TRUE((*opened)
                      ->ScanRange("", store::KsidRange{},
                                  [&](const store::EntityRecord& r) {
                                    records.push_back(r);
                                    return true;
                                  })
                      .ok());
      for (const auto& r : records) {
        EXPECT_TRUE(range->Contains(r.ksid))
            << "shard " << shard << " holds " << r.kind << "/" << r.id << " outside its range";
      }
    }
    auto key = [](const store::EntityRecord& r) {
      return std::make_tuple(r.kind, r.id, r.version, r.value);
    };
    std::set<std::tuple<std::string, std::string, uint64_t, std::string>> in_sources, in_targets;
    for (const auto& s : variant_.sources)
      for (const auto& r : contents[s]) in_sources.insert(key(r));
    for (const auto& t : variant_.targets)
      for (const auto& r : contents[t]) in_targets.insert(key(r));
    EXPECT_FALSE(in_targets.empty());
    if (!quiesced) return;
    EXPECT_EQ(in_sources.size(), in_targets.size());
    EXPECT_TRUE(in_sources == in_targets)
        << "the targets do not hold exactly what the sources hold in the moved range";
  }

  int64_t errors() const { return errors_.load(); }
  // Waits until the clients did `more` operations (at most 60 s): every step of a test runs under
  // real traffic however slow the machine (ASan, other jobs).
  void WaitOps(int64_t more) {
    int64_t target = ops_.load() + more;
    auto until = Clock::now() + std::chrono::seconds(60);
    while (ops_.load() < target && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  size_t operations() const { return recorded_.size(); }
  size_t checked_ops() const { return checked_ops_; }
  void ForgiveErrors() { forgive_errors_ = true; }

  static constexpr int kSharedKeys = 300;

 private:
  struct AppendKey {
    std::optional<std::string> acknowledged;
    std::optional<std::string> unknown;  // an append whose outcome is unknown (then stopped)
  };

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - epoch_).count();
  }

  void Work(int c, int ops_per_s) {
    ClientOptions options;
    options.timeout = std::chrono::seconds(5);
    options.connections = 1;
    auto client = Client(client_runtime_, router_url_, options);
    std::mt19937 rng(1000 + c);
    std::vector<Recorded> mine;
    std::map<std::string, AppendKey> my_appends;
    auto interval = std::chrono::microseconds(1'000'000 / ops_per_s);
    auto next = Clock::now();
    for (uint64_t n = 0; !stop_; ++n) {
      next += interval;
      std::this_thread::sleep_until(next);
      int pick = static_cast<int>(rng() % 100);
      std::string key = fmt::format("k{}", rng() % kSharedKeys);
      RegisterOp op;
      std::string message;
      AppendKey* append = nullptr;
      if (pick < 35) {
        op.kind = RegisterOp::Kind::kSave;
        op.value = fmt::format("c{}n{}", c, n);
        message = fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})",
                              key, *op.value);
      } else if (pick < 80) {
        op.kind = RegisterOp::Kind::kLoad;
        message = fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", key);
      } else if (pick < 88) {
        op.kind = RegisterOp::Kind::kRemove;
        message = fmt::format(R"({{"store":"remove","kind":"entry","id":"{}"}})", key);
      } else {
        key = fmt::format("a{}_{}", c, rng() % 4);
        append = &my_appends[key];
        if (append->unknown) continue;  // its value is no longer predictable: leave it
        op.kind = RegisterOp::Kind::kSave;
        op.value = append->acknowledged.value_or("") + fmt::format(".{}", n);
        message = fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})",
                              key, *op.value);
      }
      op.call = Now();
      auto r = CallAndWait(*client, Msg(message));
      op.ret = Now();
      if (r.ok()) {
        if (op.kind == RegisterOp::Kind::kLoad) op.value = ValueOf(*r);
        if (append) append->acknowledged = op.value;
      } else if (r.status().code() == Code::kNotFound) {
        // A load of an absent key, or a remove that found nothing: both observed absence.
        op.kind = RegisterOp::Kind::kLoad;
        op.value = std::nullopt;
      } else {
        op.ret = RegisterOp::kUnknown;
        if (append) append->unknown = op.value;
        if (!forgive_errors_) {
          std::lock_guard<std::mutex> lock(mu_);
          if (first_errors_.size() < 5) first_errors_.push_back(r.status().ToString());
        }
        ++errors_;
        // Back off like a real client: while a node is down, retrying at full rate only adds
        // writes of unknown outcome to the history.
        next = Clock::now() + std::chrono::milliseconds(50);
      }
      mine.push_back({key, std::move(op)});
      ++ops_;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : mine) recorded_.push_back(std::move(r));
    for (auto& [key, a] : my_appends) appends_[key] = a;
  }

 public:
  std::vector<std::string> first_errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_errors_;
  }
  void StartAll() {
    StartStorage();
    StartRouter();
  }

 private:
  Variant variant_;
  TempDir data_dir_, storage_dir_, router_dir_;
  std::string data_;
  const std::vector<uint16_t> ports_ = FreePorts(2);
  const uint16_t storage_port_ = ports_[0];
  const uint16_t router_port_ = ports_[1];
  std::unique_ptr<ServeProcess> storage_, router_;
  std::string storage_url_, router_url_;
  IoRuntime admin_runtime_{1};
  IoRuntime client_runtime_{2};
  std::shared_ptr<Handler> admin_;
  const Clock::time_point epoch_ = Clock::now();
  std::atomic<bool> stop_{false};
  std::atomic<bool> forgive_errors_{false};
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::vector<Recorded> recorded_;            // guarded by mu_ until the workers stop
  std::map<std::string, AppendKey> appends_;  // guarded by mu_
  std::vector<std::string> first_errors_;     // guarded by mu_
  std::map<std::string, std::string> initial_;
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> ops_{0};
  size_t checked_ops_ = 0;
};

// --- the full workflow under 16 clients --------------------------------------------------------

class LiveMigrationProcessTest : public ::testing::TestWithParam<Variant> {};

TEST_P(LiveMigrationProcessTest, UnderSixteenClientsNothingIsLostDuplicatedOrSeenOutOfOrder) {
  LiveMigrationProcesses cluster(GetParam());
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(4000));
  // 16 clients × 650 ops/s: ~10,400 ops/s offered; what is achieved is printed (the clients,
  // the router and the storage node share 2 cores).
  const auto traffic_started = Clock::now();
  cluster.StartTraffic(16, 650);
  cluster.WaitOps(500);

  auto started = cluster.Migrate("start");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto copied = cluster.WaitCopied();
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->GetString("phase"), std::optional<std::string_view>("copied"));
  EXPECT_GT(copied->GetUint("rows_copied").value_or(0), 0u);
  auto verified = cluster.Migrate("verify");
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->GetBool("ok"), std::optional<bool>(true)) << ToJson(*verified);

  for (const char* op : {"cutover", "rollback", "cutover"}) {
    cluster.WaitOps(500);
    ASSERT_TRUE(cluster.WaitLag(100).ok());
    auto r = cluster.Migrate(op);
    ASSERT_TRUE(r.ok()) << op << ": " << r.status().ToString() << cluster.logs();
    std::printf("%s: epoch %llu, pause %.1f ms\n", op,
                static_cast<unsigned long long>(r->GetUint("epoch").value_or(0)),
                r->GetDouble("pause_ms").value_or(-1));
  }
  cluster.WaitOps(500);
  cluster.StopTraffic();
  const double traffic_s = std::chrono::duration<double>(Clock::now() - traffic_started).count();
  std::printf("%zu operations in %.1f s: %.0f ops/s achieved\n", cluster.operations(), traffic_s,
              cluster.operations() / traffic_s);
  // The reverse replication carries the targets' last writes back before it stops.
  ASSERT_TRUE(cluster.WaitLag(0).ok());
  auto completed = cluster.Migrate("complete");
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(completed->GetString("phase"), std::optional<std::string_view>("completed"));

  EXPECT_EQ(cluster.errors(), 0) << ::testing::PrintToString(cluster.first_errors());
  // Every process restarted (kill -9), then every key read back and checked.
  cluster.KillAll();
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("completed"));
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  std::printf("%zu client operations, %zu checked for linearizability\n", cluster.operations(),
              cluster.checked_ops());
  EXPECT_GT(cluster.operations(), 1000u);  // ~15,000 in release, ~2,500 under ASan
  cluster.KillAll();
  cluster.CheckStoreFiles();
}

INSTANTIATE_TEST_SUITE_P(
    Workflows, LiveMigrationProcessTest,
    ::testing::Values(Variant{"split", {"40-80"}, {"40-60", "60-80"}},
                      Variant{"replace_rocksdb_with_sqlite", {"40-80"}, {"40-80@sqlite"}},
                      Variant{"merge", {"80-c0", "c0-"}, {"80-"}}),
    [](const auto& info) { return info.param.name; });

// The router process killed (-9) between the copy and the cutover and started again after it: its
// clients fail while it is down (outcome unknown), then carry on through the new router, which
// starts with the new map; rollback and completion follow; nothing acknowledged is lost.
TEST(RouterCrash, ARouterKilledAcrossTheCutoverComesBackWithTheNewMapAndLosesNothing) {
  LiveMigrationProcesses cluster(Variant{"split", {"40-80"}, {"40-60", "60-80"}});
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(3000));
  cluster.ForgiveErrors();
  cluster.StartTraffic(4, 300);
  ASSERT_TRUE(cluster.Migrate("start").ok());
  ASSERT_TRUE(cluster.WaitCopied().ok());
  cluster.KillRouter();
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  auto cutover = cluster.Migrate("cutover");
  ASSERT_TRUE(cutover.ok()) << cutover.status().ToString();
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());  // same port: the clients reconnect
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("rollback").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(cluster.WaitLag(100).ok());
  ASSERT_TRUE(cluster.Migrate("cutover").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cluster.StopTraffic();
  EXPECT_GT(cluster.errors(), 0) << "no request was cut by the router's death";
  ASSERT_TRUE(cluster.WaitLag(0).ok());
  ASSERT_TRUE(cluster.Migrate("complete").ok());
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  cluster.KillAll();
  cluster.CheckStoreFiles();
}

// --- kill -9 of the coordinator at every journal state ----------------------------------------

struct CrashCase {
  std::string point;               // SHARDKIT_CRASH_POINT
  std::vector<std::string> steps;  // migrate ops that run (one of them reaches the point)
};

void PrintTo(const CrashCase& c, std::ostream* os) { *os << c.point; }

class CoordinatorCrashTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CoordinatorCrashTest, ResumesFromItsJournalAndLosesNothing) {
  const CrashCase& c = GetParam();
  LiveMigrationProcesses cluster(Variant{"split", {"40-80"}, {"40-60", "60-80"}});
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage(c.point.c_str()));
  ASSERT_NO_FATAL_FAILURE(cluster.StartRouter());
  ASSERT_NO_FATAL_FAILURE(cluster.Preload(6000));
  cluster.ForgiveErrors();  // the requests in flight when the node dies fail: outcome unknown
  cluster.StartTraffic(4, 300);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  bool crashed = false;
  for (const auto& step : c.steps) {
    auto r = cluster.Migrate(step);
    if (r.ok() && step == "start") r = cluster.WaitCopied();
    if (!r.ok()) {
      crashed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(crashed) << "the crash point " << c.point << " was not reached";
  int exit_code = cluster.storage().WaitExit(std::chrono::seconds(10));
  ASSERT_EQ(exit_code, 128 + SIGKILL) << cluster.logs();
  EXPECT_NE(cluster.storage().log().find("crash point " + c.point), std::string::npos);

  // Restart the storage node (the router keeps running and reconnects); the migrator resumes.
  ASSERT_NO_FATAL_FAILURE(cluster.StartStorage());
  auto resumed = cluster.WaitCopied();
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString() << cluster.logs();
  std::string phase(resumed->GetString("phase").value_or(""));
  if (phase == "copied" || phase == "rolled_back") {
    ASSERT_TRUE(cluster.WaitLag(100).ok());
    auto r = cluster.Migrate("cutover");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    phase = "cutover_done";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cluster.StopTraffic();
  bool completed_under_traffic = phase == "completed";
  if (phase == "cutover_done") {
    ASSERT_TRUE(cluster.WaitLag(0).ok());
    auto r = cluster.Migrate("complete");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  } else {
    EXPECT_EQ(phase, "completed");
  }
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  cluster.KillAll();
  // Completed while clients wrote: the targets took writes the sources never saw (by design).
  cluster.CheckStoreFiles(/*quiesced=*/!completed_under_traffic);
}

INSTANTIATE_TEST_SUITE_P(
    JournalStates, CoordinatorCrashTest,
    ::testing::Values(CrashCase{"migrate:copying", {"start"}},
                      CrashCase{"migrate:copied", {"start"}},
                      CrashCase{"migrate:cutover", {"start", "cutover"}},
                      CrashCase{"migrate:fenced", {"start", "cutover"}},
                      CrashCase{"migrate:map_swapped", {"start", "cutover"}},
                      CrashCase{"migrate:cutover_done", {"start", "cutover"}},
                      CrashCase{"migrate:rollback", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:fenced_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:map_swapped_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:rolled_back", {"start", "cutover", "rollback"}},
                      CrashCase{"migrate:completed", {"start", "cutover", "complete"}}),
    [](const auto& info) {
      std::string name = info.param.point.substr(info.param.point.find(':') + 1);
      return name;
    });

}  // namespace
}  // namespace shardkit::migrate::testing
