// The harness of the live-migration process tests: a storage node (the authoritative shard map,
// four RocksDB shards -40, 40-80, 80-c0, c0-, the migration targets and the migrator) and a router
// node, real `shardkit serve` processes (with a target node and a coordinator node for the remote
// variants); client threads recording every operation for the
// linearizability and append-key checks; the stores' files opened directly once stopped.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "../services/nats_server.h"
#include "../services/serve_process.h"
#include "linearizability.h"
#include "shardkit/message/json.h"
#include "shardkit/shard/shard_map.h"
#include "shardkit/store/entity_store.h"

namespace shardkit::migrate::testing {

using services::CallAndWait;
using services::ClientOptions;
using services::IoRuntime;
using services::testing::Client;
using services::testing::Msg;
using services::testing::ServeProcess;
using services::testing::TempDir;
using Clock = std::chrono::steady_clock;

inline const std::vector<std::string> kInitialShards = {"-40", "40-80", "80-c0", "c0-"};

struct Variant {
  std::string name;
  std::vector<std::string> sources;
  std::vector<std::string> targets;
  std::vector<std::string> other_stores;  // more stores on the storage node, for other specs
  // The targets are served by a third process, the *target* node (a shard-map follower of the
  // storage node); the router sends their shard messages there directly.
  bool remote = false;
  std::vector<std::string> retired;  // stores taken out of the config (after a migration)
  // The migrator runs on a fourth process of its own, the *coordinator* node (the authoritative
  // map and the migrator, no store); the storage node follows its map and serves the sources,
  // which the migrator reaches over TCP like the targets (a remote variant).
  bool coordinator = false;
  // Every node in cluster mode over one nats-server the harness starts: the JetStream KV holds
  // the authoritative map, the target node and the router take it from there, and `nodes` names
  // the target node by the NATS server's URL (a remote variant).
  bool nats = false;
};

// Every store of the storage node, each once.
inline std::vector<std::string> StoreShards(const Variant& v) {
  std::vector<std::string> shards;
  for (const auto* more : {&kInitialShards, &v.targets, &v.other_stores}) {
    if (more == &v.targets && v.remote) continue;
    for (const auto& s : *more) {
      if (std::find(shards.begin(), shards.end(), s) == shards.end() &&
          std::find(v.retired.begin(), v.retired.end(), s) == v.retired.end())
        shards.push_back(s);
    }
  }
  return shards;
}

inline void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

inline std::string JsonList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += fmt::format("{}\"{}\"", i ? "," : "", names[i]);
  return out + "]";
}

inline std::string Backend(const std::string& shard) {
  return shard.find("@sqlite") != std::string::npos ? "sqlite" : "rocksdb";
}

// A directory name for a shard ("40-80@sqlite" -> "40-80_sqlite").
inline std::string DirName(std::string shard) {
  std::replace(shard.begin(), shard.end(), '@', '_');
  return shard.empty() || shard == "-" ? "all" : shard;
}

// `n` distinct ports free now (all bound at once, then released), so restarted nodes come back
// where their peers expect. Bound together: one at a time, the kernel may hand out the same port
// twice.
inline std::vector<uint16_t> FreePorts(size_t n) {
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

inline std::string StoreServices(const std::string& data, const std::vector<std::string>& shards) {
  std::string toml;
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
  return toml;
}

// The coordinator node: the authoritative map and the migrator, no store.
inline std::string CoordinatorConfig(const std::string& data, uint16_t port) {
  return fmt::format(R"(
[node]
name = "coordinator"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{0}"
[[service]]
name = "map"
type = "shard-map"
ranges = {1}
path = "{2}/map.json"
[[service]]
name = "migrator"
type = "migrator"
dir = "{2}/migrations"
)",
                     port, JsonList(kInitialShards), data);
}

// With a coordinator node (`map_from`), the storage node follows its map and runs no migrator.
inline std::string StorageConfig(const std::string& data, uint16_t port, const Variant& v,
                                 const std::string& map_from = {}) {
  if (v.coordinator) {
    return fmt::format(R"(
[node]
name = "storage"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{}"
[[service]]
name = "map"
type = "shard-map"
from = "{}"
refresh_ms = 0
)",
                       port, map_from) +
           StoreServices(data, StoreShards(v));
  }
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
  toml += StoreServices(data, StoreShards(v));
  toml += fmt::format(R"(
[[service]]
name = "migrator"
type = "migrator"
dir = "{}/migrations"
)",
                      data);
  return toml;
}

// How a non-authoritative node holds the map: a follower of `from`, or (empty: cluster mode) the
// initial ranges, which the node replaces with the JetStream KV's newer map.
inline std::string FollowerMap(const std::string& from) {
  if (from.empty()) return fmt::format("ranges = {}\n", JsonList(kInitialShards));
  return fmt::format("from = \"{}\"\nrefresh_ms = 0\n", from);
}

// The target node of a remote variant: a follower of the authoritative map and the targets.
inline std::string TargetConfig(const std::string& data, const std::string& storage_url,
                                uint16_t port, const Variant& v) {
  return fmt::format(R"(
[node]
name = "target"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{}"
[[service]]
name = "map"
type = "shard-map"
{})",
                     port, FollowerMap(storage_url)) +
         StoreServices(data, v.targets);
}

// `map_from`: the authoritative map's node, when not the storage node. An empty `storage_url`:
// cluster mode, the routes and the map come from the cluster.
inline std::string RouterConfig(const std::string& storage_url, uint16_t port,
                                const std::string& target_url = {},
                                const std::vector<std::string>& targets = {},
                                const std::string& map_from = {}) {
  std::string toml =
      fmt::format(R"(
[node]
name = "router"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:{1}"
[[service]]
name = "map"
type = "shard-map"
{2}[[service]]
name = "router"
type = "shard-router"
node_id = 1
)",
                  storage_url, port, FollowerMap(map_from.empty() ? storage_url : map_from));
  if (storage_url.empty()) return toml;
  toml += fmt::format(R"(
[[route]]
pattern = "store:*,kind:*,shard:*"
to = "{}"
timeout_ms = 5000
)",
                      storage_url);
  for (const auto& t : targets) {
    toml += fmt::format(R"(
[[route]]
pattern = 'store:*,kind:*,shard:"{}"'
to = "{}"
timeout_ms = 5000
)",
                        t, target_url);
  }
  return toml;
}

// One recorded operation on one key.
struct Recorded {
  std::string key;
  RegisterOp op;
};

inline std::optional<std::string> ValueOf(const Message& reply) {
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
    if (variant_.nats) nats_ = std::make_unique<services::testing::NatsServer>();
  }
  // The nats-server of a nats variant (null otherwise).
  services::testing::NatsServer* nats() { return nats_.get(); }
  // `toml` with a [cluster] section over the harness's nats-server (a nats variant).
  std::string Clustered(std::string toml) const {
    if (!nats_) return toml;
    return toml + fmt::format("\n[cluster]\nnats = \"{}\"\nttl_ms = 3000\n", nats_->url());
  }
  ~LiveMigrationProcesses() { StopTraffic(); }

  // --- processes ----------------------------------------------------------------------------
  // The coordinator node of a coordinator variant (first: the others follow its map).
  // `crash_point`: its SHARDKIT_CRASH_POINT (the migrator's journal states).
  void StartCoordinator(const char* crash_point = nullptr) {
    std::string config =
        coordinator_dir_.Write("coordinator.toml", CoordinatorConfig(data_, coordinator_port_));
    if (crash_point) setenv("SHARDKIT_CRASH_POINT", crash_point, 1);
    coordinator_ = std::make_unique<ServeProcess>(coordinator_dir_, config);
    if (crash_point) unsetenv("SHARDKIT_CRASH_POINT");
    auto urls = coordinator_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    Admin(urls[0]);
  }
  ServeProcess& coordinator() { return *coordinator_; }
  void KillCoordinator() { Kill(coordinator_); }
  void KillStorage() { Kill(storage_); }
  // Where the authoritative map is: the coordinator node, else the storage node.
  std::string map_url() const {
    return variant_.coordinator ? fmt::format("tcp://127.0.0.1:{}", coordinator_port_)
                                : fmt::format("tcp://127.0.0.1:{}", storage_port_);
  }
  void StartStorage(const char* crash_point = nullptr) {
    std::string config = storage_dir_.Write(
        "storage.toml", Clustered(StorageConfig(data_, storage_port_, variant_, map_url())));
    if (crash_point) setenv("SHARDKIT_CRASH_POINT", crash_point, 1);
    storage_ = std::make_unique<ServeProcess>(storage_dir_, config);
    if (crash_point) unsetenv("SHARDKIT_CRASH_POINT");
    auto urls = storage_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    storage_url_ = urls[0];
    if (!variant_.coordinator) Admin(storage_url_);
  }
  // The migrator's node, which the migrate:* messages and commands go to.
  void Admin(const std::string& url) {
    migrator_url_ = url;
    ClientOptions options;
    options.timeout = std::chrono::seconds(60);  // a copy or a cutover may take a while
    options.connections = 1;
    admin_ = Client(admin_runtime_, url, options);
  }
  // The target node of a remote variant (after the storage node: it follows its map).
  // `replicate_delay_ms`: the target applies each replicated batch that much later (a target
  // much slower than its source).
  // `crash_point`: SHARDKIT_CRASH_POINT of the target node (a rollback throws its gate).
  void StartTarget(const char* replicate_delay_ms = nullptr, const char* crash_point = nullptr) {
    std::string config = target_dir_.Write(
        "target.toml",
        Clustered(TargetConfig(data_, nats_ ? "" : map_url(), target_port_, variant_)));
    if (replicate_delay_ms) setenv("SHARDKIT_REPLICATE_DELAY_MS", replicate_delay_ms, 1);
    if (crash_point) setenv("SHARDKIT_CRASH_POINT", crash_point, 1);
    target_ = std::make_unique<ServeProcess>(target_dir_, config);
    if (replicate_delay_ms) unsetenv("SHARDKIT_REPLICATE_DELAY_MS");
    if (crash_point) unsetenv("SHARDKIT_CRASH_POINT");
    auto urls = target_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    if (nats_) {
      // The storage node reaches the targets through the cluster once it has seen them.
      for (const auto& t : variant_.targets) {
        ASSERT_TRUE(WaitAnswered(storage_url_,
                                 fmt::format(R"({{"store":"replication","v":1,"shard":"{}"}})", t)))
            << logs();
      }
    }
  }
  // Polls `json` at `url` for up to 10 s until it is answered ok.
  bool WaitAnswered(const std::string& url, const std::string& json) {
    auto until = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < until) {
      if (CallNode(url, json).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  ServeProcess& target() { return *target_; }
  void KillTarget() { Kill(target_); }
  static void Kill(std::unique_ptr<ServeProcess>& process) {
    process->Signal(SIGKILL);
    process->WaitExit(std::chrono::seconds(10));
    process.reset();
  }
  // One message to the target node, as the migrator sends it (replication protocol).
  Result<Message> CallTarget(const std::string& json) { return CallNode(target_url(), json); }
  Result<Message> CallNode(const std::string& url, const std::string& json) {
    auto client = Client(admin_runtime_, url);
    return CallAndWait(*client, Msg(json));
  }
  // Where the targets are: the target node's URL (remote variants).
  std::string target_url() const { return fmt::format("tcp://127.0.0.1:{}", target_port_); }
  // How the migrator names the target node: its URL, or the NATS server's (a nats variant).
  std::string target_node() const { return nats_ ? nats_->url() : target_url(); }
  void StartRouter() {
    std::string config = router_dir_.Write(
        "router.toml",
        nats_ ? Clustered(RouterConfig({}, router_port_))
              : RouterConfig(storage_url_, router_port_, target_url(),
                             variant_.remote ? variant_.targets : std::vector<std::string>{},
                             map_url()));
    router_ = std::make_unique<ServeProcess>(router_dir_, config);
    auto urls = router_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    router_url_ = urls[0];
    if (nats_) {
      // Its routes to the stores come from the cluster's registry.
      for (const auto& shard : kInitialShards) {
        ASSERT_TRUE(WaitAnswered(
            router_url_, fmt::format(R"({{"store":"replication","v":1,"shard":"{}"}})", shard)))
            << logs();
      }
    }
  }
  void KillAll() {
    for (auto* p : {router_.get(), target_.get(), storage_.get(), coordinator_.get()}) {
      if (!p) continue;
      p->Signal(SIGKILL);
      p->WaitExit(std::chrono::seconds(10));
    }
    router_.reset();
    target_.reset();
    storage_.reset();
    coordinator_.reset();
  }
  ServeProcess& storage() { return *storage_; }
  void KillRouter() {
    router_->Signal(SIGKILL);
    router_->WaitExit(std::chrono::seconds(10));
    router_.reset();
  }
  std::string logs() const {
    return "--- storage log ---\n" + (storage_ ? storage_->log() : std::string("(gone)")) +
           "\n--- router log ---\n" + (router_ ? router_->log() : std::string("(gone)")) +
           "\n--- target log ---\n" + (target_ ? target_->log() : std::string("(none)")) +
           "\n--- coordinator log ---\n" +
           (coordinator_ ? coordinator_->log() : std::string("(none)"));
  }

  // --- the migration ------------------------------------------------------------------------
  Result<Message> Migrate(const std::string& op) {
    return MigrateAs(op, migration_id_, variant_.sources, variant_.targets);
  }
  // The next migration Migrate() drives: its id and the stores the storage node serves (written
  // to its config and reloaded, so new targets exist and retired sources go).
  Result<Message> Reconfigure(const std::string& migration_id, Variant variant) {
    migration_id_ = migration_id;
    variant_ = std::move(variant);
    storage_dir_.Write("storage.toml",
                       Clustered(StorageConfig(data_, storage_port_, variant_, map_url())));
    return CallAndWait(*admin_, Msg(R"({"sys":"config","cmd":"reload"})"));
  }
  const std::string& data() const { return data_; }
  ServeProcess& router() { return *router_; }
  // Any migration: `sources` and `targets` go with a start only.
  Result<Message> MigrateAs(const std::string& op, const std::string& id,
                            const std::vector<std::string>& sources = {},
                            const std::vector<std::string>& targets = {}) {
    std::string extra;
    if (op == "start") {
      extra = fmt::format(R"(,"sources":{},"targets":{})", JsonList(sources), JsonList(targets));
      if (variant_.remote) extra += fmt::format(R"(,"nodes":{})", NodesJson(targets, sources));
    }
    return CallAndWait(*admin_,
                       Msg(fmt::format(R"({{"migrate":"{}","id":"{}"{}}})", op, id, extra)));
  }
  // Any message to the migrator, as JSON text.
  Result<Message> MigrateRaw(const std::string& json) { return CallAndWait(*admin_, Msg(json)); }
  const std::string& storage_url() const { return storage_url_; }
  const std::string& router_url() const { return router_url_; }
  // The `nodes` of a start: every target on the target node; with a coordinator node, every
  // source on the storage node.
  std::string NodesJson(const std::vector<std::string>& targets,
                        const std::vector<std::string>& sources = {}) const {
    JsonObject nodes;
    for (const auto& t : targets) nodes.Add(t, target_node());
    if (variant_.coordinator) {
      for (const auto& s : sources) nodes.Add(s, storage_address());
    }
    return nodes.str();
  }
  // The storage node's URL, known before it runs (its port is fixed).
  std::string storage_address() const { return fmt::format("tcp://127.0.0.1:{}", storage_port_); }
  // The --node options of a remote variant's `shardkit migrate` command line.
  std::string NodeOptions() const {
    std::string out;
    if (!variant_.remote) return out;
    for (const auto& t : variant_.targets) out += fmt::format(" --node {}={}", t, target_node());
    if (variant_.coordinator) {
      for (const auto& s : variant_.sources)
        out += fmt::format(" --node {}={}", s, storage_address());
    }
    return out;
  }
  // `shardkit migrate <args> --to <the migrator's node>`, as an operator runs it.
  services::testing::ShellRun MigrateCli(const std::string& args) {
    return services::testing::Shell(
        storage_dir_, services::testing::Cli(fmt::format("migrate {} --to {} --timeout-ms 120000",
                                                         args, migrator_url_)));
  }
  // After a crash: the operator's command line run again (it goes on from the journal's phase)
  // must complete the migration; then the clients stop and nothing may be lost or seen out of
  // order. Call under ASSERT_NO_FATAL_FAILURE.
  void FinishWithCliAndCheck(const std::string& args) {
    auto run = MigrateCli(args);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err << logs();
    auto status = Migrate("status");
    ASSERT_TRUE(status.ok()) << status.status().ToString();
    EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("completed"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    StopTraffic();
    ASSERT_NO_FATAL_FAILURE(CheckHistories());
    EXPECT_EQ(LostPreloaded(), 0) << "of " << preloaded();
    KillAll();
    // Completed while clients wrote: the targets took writes the sources never saw (by design).
    CheckStoreFiles(/*quiesced=*/false);
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
            continue;
          }
          std::lock_guard<std::mutex> lock(mu);
          if (i >= kSharedKeys) {
            preloaded_[key] = value;  // no client writes these
          } else {
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
    std::vector<std::string> shards = StoreShards(variant_);
    if (variant_.remote)
      shards.insert(shards.end(), variant_.targets.begin(), variant_.targets.end());
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

  // The preloaded entities no client touches, read back through the router: how many are
  // missing or hold another value.
  int LostPreloaded() {
    auto client = Client(client_runtime_, router_url_);
    int lost = 0;
    for (const auto& [key, value] : preloaded_) {
      auto r = CallAndWait(*client,
                           Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", key)));
      if (!r.ok() || ValueOf(*r) != value) ++lost;
    }
    return lost;
  }
  size_t preloaded() const { return preloaded_.size(); }

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
  size_t operations() const { return recorded_.size(); }  // once the traffic stopped
  int64_t ops() const { return ops_.load(); }             // so far
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
    if (variant_.coordinator) StartCoordinator();
    StartStorage();
    if (variant_.remote) StartTarget();
    StartRouter();
  }

 private:
  Variant variant_;
  std::string migration_id_ = "m1";
  TempDir data_dir_, storage_dir_, router_dir_, target_dir_, coordinator_dir_;
  std::unique_ptr<services::testing::NatsServer> nats_;  // outlives the nodes (declared first)
  std::string data_;
  const std::vector<uint16_t> ports_ = FreePorts(4);
  const uint16_t storage_port_ = ports_[0];
  const uint16_t router_port_ = ports_[1];
  const uint16_t target_port_ = ports_[2];
  const uint16_t coordinator_port_ = ports_[3];
  std::unique_ptr<ServeProcess> storage_, router_, target_, coordinator_;
  std::string storage_url_, router_url_, migrator_url_;
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
  std::map<std::string, std::string> preloaded_;  // bulk keys -> value
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> ops_{0};
  size_t checked_ops_ = 0;
};

// Starts the migration, waits for the copy and verifies the targets against the sources.
inline void StartCopyAndVerify(LiveMigrationProcesses& cluster) {
  auto started = cluster.Migrate("start");
  ASSERT_TRUE(started.ok()) << started.status().ToString() << cluster.logs();
  auto copied = cluster.WaitCopied();
  ASSERT_TRUE(copied.ok()) << copied.status().ToString() << cluster.logs();
  EXPECT_EQ(copied->GetString("phase"), std::optional<std::string_view>("copied"));
  EXPECT_GT(copied->GetUint("rows_copied").value_or(0), 0u);
  auto verified = cluster.Migrate("verify");
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->GetBool("ok"), std::optional<bool>(true)) << ToJson(*verified);
}

// Once the targets are within 100 records of the sources, a cutover or rollback; prints its
// epoch and write pause after `what`.
inline Result<Message> CaughtUpStep(LiveMigrationProcesses& cluster, const std::string& step,
                                    std::string_view what) {
  if (auto lag = cluster.WaitLag(100); !lag.ok()) return lag.status();
  auto reply = cluster.Migrate(step);
  if (reply.ok()) {
    std::printf("%.*s: epoch %llu, pause %.1f ms\n", static_cast<int>(what.size()), what.data(),
                static_cast<unsigned long long>(reply->GetUint("epoch").value_or(0)),
                reply->GetDouble("pause_ms").value_or(-1));
  }
  return reply;
}

// The end of a finished migration's process test: every process killed (-9) and started again,
// the migration still `completed`, every client history linearizable and no preloaded entity
// lost; then killed again and the store files checked (the targets took the writes after the
// cutover, the sources keep their copy of before). `quiesced`: the clients stopped before the
// migration completed, so the sources hold every write the targets hold.
inline void CheckAfterKillAndRestart(LiveMigrationProcesses& cluster, bool quiesced = false) {
  cluster.KillAll();
  ASSERT_NO_FATAL_FAILURE(cluster.StartAll());
  auto status = cluster.Migrate("status");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->GetString("phase"), std::optional<std::string_view>("completed"));
  ASSERT_NO_FATAL_FAILURE(cluster.CheckHistories());
  EXPECT_EQ(cluster.LostPreloaded(), 0) << "of " << cluster.preloaded();
  std::printf("%zu client operations, %zu checked for linearizability\n", cluster.operations(),
              cluster.checked_ops());
  EXPECT_GT(cluster.operations(), 1000u);
  cluster.KillAll();
  cluster.CheckStoreFiles(quiesced);
}

}  // namespace shardkit::migrate::testing
