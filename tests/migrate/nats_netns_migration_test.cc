// Three hosts and a NATS server, each in a network namespace of its own joined by a bridge: hosts
// A and B run cluster-mode nodes (A: two shards, the migrator; B: two shards and the clients'
// shard router), then host C joins and half of host A's ranges move to it over NATS while
// clients write through B. Nothing any client was told is saved may be lost. Needs root and
// `ip netns` (package iproute2); with CI set their absence fails the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "../services/nats_server.h"
#include "../services/netns_serve.h"
#include "shardkit/message/codec.h"

namespace shardkit::services::testing {
namespace {

using namespace std::chrono_literals;

// One namespace per host, each with a veth pair to a bridge in a namespace of its own.
struct Hosts {
  std::vector<std::string> names, addresses;
  std::string bridge, problem;
  bool ok = false;

  explicit Hosts(const std::vector<std::string>& hosts) {
    int id = getpid() % 50000;
    bridge = fmt::format("sksw-{}", id);
    if (geteuid() != 0) {
      problem = "needs root to create network namespaces (ip netns)";
      return;
    }
    if (std::system("command -v ip >/dev/null 2>&1") != 0) {
      problem = "the ip tool (package iproute2) is not installed";
      return;
    }
    std::vector<std::string> steps = {fmt::format("ip netns add {}", bridge),
                                      fmt::format("ip -n {} link add br0 type bridge", bridge),
                                      fmt::format("ip -n {} link set br0 up", bridge)};
    for (size_t i = 0; i < hosts.size(); ++i) {
      std::string ns = fmt::format("skh{}-{}", hosts[i], id), veth = fmt::format("skv{}{}", i, id);
      std::string address = fmt::format("10.214.{}.{}", 16 + id % 200, i + 1);
      names.push_back(ns);
      addresses.push_back(address);
      for (const std::string& step : {
               fmt::format("ip netns add {}", ns),
               fmt::format("ip link add {} type veth peer name {}p", veth, veth),
               fmt::format("ip link set {} netns {}", veth, ns),
               fmt::format("ip link set {}p netns {}", veth, bridge),
               fmt::format("ip -n {} link set {}p master br0", bridge, veth),
               fmt::format("ip -n {} link set {}p up", bridge, veth),
               fmt::format("ip -n {} addr add {}/24 dev {}", ns, address, veth),
               fmt::format("ip -n {} link set {} up", ns, veth),
               fmt::format("ip -n {} link set lo up", ns),
           })
        steps.push_back(step);
    }
    std::string err = fmt::format("/tmp/sksw-err-{}", id);
    for (const auto& step : steps) {
      if (std::system((step + " 2>" + err).c_str()) != 0) {
        problem = fmt::format("cannot create network namespaces here ('{}' failed: {})", step,
                              ReadFile(err));
        return;
      }
    }
    std::remove(err.c_str());
    ok = true;
  }
  ~Hosts() {
    for (const auto& ns : names)
      (void)std::system(fmt::format("ip netns del {} 2>/dev/null", ns).c_str());
    (void)std::system(fmt::format("ip netns del {} 2>/dev/null", bridge).c_str());
  }
  // Moves this process's network into host `i`'s namespace (before any thread starts, so every
  // thread of the test's clients is there too).
  bool Enter(size_t i) const {
    int fd = open(fmt::format("/var/run/netns/{}", names[i]).c_str(), O_RDONLY);
    bool entered = fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) close(fd);
    return entered;
  }
};

// A cluster-mode node on `host` (its address): the map, the `stores` and `extra` services.
std::string HostConfig(const std::string& name, const std::string& address, const std::string& nats,
                       const std::string& data, const std::vector<std::string>& stores,
                       const std::string& extra = {}) {
  std::string toml = fmt::format(R"(
[node]
name = "{}"
threads = 2
[[listener]]
url = "tcp://{}:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-40", "40-80", "80-c0", "c0-"]
{}
)",
                                 name, address, extra);
  for (const auto& shard : stores) {
    toml += fmt::format(R"(
[[service]]
name = "store-{0}"
type = "store"
path = "{1}/{0}"
shard = "{0}"
)",
                        shard, data);
  }
  return toml + fmt::format("\n[cluster]\nnats = \"{}\"\nttl_ms = 3000\n", nats);
}

Result<Message> Ask(const std::string& url, const std::string& json) {
  IoRuntime runtime(1);
  auto client = Client(runtime, url, ClientOptions{.timeout = 60s});
  return CallAndWait(*client, Msg(json));
}

// Polls `json` at `url` until it is answered ok (10 s at most).
bool Answered(const std::string& url, const std::string& json) {
  for (int i = 0; i < 200; ++i) {
    if (Ask(url, json).ok()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Clients writing their own keys through one router, each key by one client in turn, so the last
// acknowledged value of a key is what a read must find at the end.
class Writers {
 public:
  Writers(std::string url, int clients) : url_(std::move(url)) {
    for (int c = 0; c < clients; ++c) threads_.emplace_back([this, c] { Work(c); });
  }
  ~Writers() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int errors() const { return errors_; }
  int64_t acknowledged() const { return acknowledged_; }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  std::map<std::string, std::string> last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  void Work(int c) {
    IoRuntime runtime(1);
    auto client = Client(runtime, url_, ClientOptions{.timeout = 10s});
    for (int i = 1; !stop_; ++i) {
      std::string id = fmt::format("w{}-{}", c, i % 64), v = std::to_string(i);
      auto r = CallAndWait(
          *client,
          Msg(fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","v":"{}"}}}})", id,
                          v)));
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) {
        last_[id] = v;
        ++acknowledged_;
      } else if (errors_++ == 0) {
        first_error_ = r.status().ToString();
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  std::string url_;
  std::atomic<bool> stop_{false};
  std::atomic<int> errors_{0};
  std::atomic<int64_t> acknowledged_{0};
  std::mutex mu_;
  std::string first_error_;                  // guarded by mu_
  std::map<std::string, std::string> last_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

// The value `url` reads for entity `id`, or the error.
std::string ValueAt(const std::string& url, const std::string& id) {
  auto r = Ask(url, fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id));
  if (!r.ok()) return r.status().ToString();
  auto ent = ParseMessage(std::string(r->GetObjectJson("ent").value_or("{}")));
  if (!ent.ok()) return "no entity";
  return std::string(ent->GetString("v").value_or("no v"));
}

TEST(NatsNetnsMigration, HostCJoinsAndHalfOfHostAsRangesMoveToItUnderLoad) {
  Hosts hosts({"n", "a", "b", "c"});
  SHARDKIT_REQUIRE_COMPONENT(hosts.ok, hosts.problem, "iproute2");
  ASSERT_TRUE(hosts.Enter(0)) << "setns into " << hosts.names[0];
  NatsServer nats(hosts.addresses[0], "ip netns exec " + hosts.names[0]);
  ASSERT_TRUE(nats.ok()) << nats.problem();
  TempDir data;
  NsServe a(
      hosts.names[1],
      HostConfig("host-a", hosts.addresses[1], nats.url(), data.path() + "/a", {"-40", "40-80"},
                 fmt::format("path = \"{0}/a-map.json\"\n[[service]]\nname = \"migrator\"\n"
                             "type = \"migrator\"\ndir = \"{0}/migrations\"",
                             data.path())));
  auto a_urls = a.WaitReady();
  ASSERT_FALSE(a_urls.empty());
  NsServe b(
      hosts.names[2],
      HostConfig("host-b", hosts.addresses[2], nats.url(), data.path() + "/b", {"80-c0", "c0-"},
                 "[[service]]\nname = \"router\"\ntype = \"shard-router\"\nnode_id = 1"));
  auto b_urls = b.WaitReady();
  ASSERT_FALSE(b_urls.empty());
  const std::string host_a = a_urls[0], router = b_urls[0];
  for (const char* shard : {"-40", "40-80", "80-c0", "c0-"}) {
    ASSERT_TRUE(
        Answered(router, fmt::format(R"({{"store":"replication","v":1,"shard":"{}"}})", shard)))
        << shard << "\n"
        << a.log() << b.log();
  }
  for (int i = 0; i < 2000; ++i) {
    auto r =
        Ask(router,
            fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"p{}","v":"p"}}}})", i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  Writers writers(router, 6);
  std::this_thread::sleep_for(500ms);
  // Host C joins with one empty store, which the map does not route to yet.
  NsServe c(hosts.names[3],
            HostConfig("host-c", hosts.addresses[3], nats.url(), data.path() + "/c", {"40-80@c"}));
  auto c_urls = c.WaitReady();
  ASSERT_FALSE(c_urls.empty());
  ASSERT_TRUE(Answered(host_a, R"({"store":"replication","v":1,"shard":"40-80@c"})")) << c.log();
  auto started = Ask(host_a, fmt::format(R"({{"migrate":"start","id":"toc","sources":["40-80"],)"
                                         R"("targets":["40-80@c"],"nodes":{{"40-80@c":"{}"}}}})",
                                         nats.url()));
  ASSERT_TRUE(started.ok()) << started.status().ToString() << a.log();
  Result<Message> status = Status::Timeout("never asked");
  for (int i = 0; i < 600; ++i) {
    status = Ask(host_a, R"({"migrate":"status","id":"toc"})");
    if (status.ok() && status->GetBool("copying") == std::optional<bool>(false)) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_GT(status->GetUint("rows_copied").value_or(0), 0u) << ToJson(*status);
  std::this_thread::sleep_for(300ms);
  auto cut = Ask(host_a, R"({"migrate":"cutover","id":"toc"})");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString() << a.log() << c.log();
  EXPECT_EQ(cut->GetUint("epoch"), 2u);
  std::printf("cutover to host C over NATS: pause %.1f ms, %llu rows copied\n",
              cut->GetDouble("pause_ms").value_or(-1),
              static_cast<unsigned long long>(status->GetUint("rows_copied").value_or(0)));
  // Host B's router and host C take the new map from the KV.
  for (const std::string& url : {router, c_urls[0]}) {
    auto map = Ask(url, R"({"shardmap":"get","map":"main"})");
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    EXPECT_EQ(map->GetArrayJson("ranges"), R"(["-40","40-80@c","80-c0","c0-"])") << url;
  }
  int64_t at_cutover = writers.acknowledged();
  std::this_thread::sleep_for(1s);
  writers.Stop();
  EXPECT_GT(writers.acknowledged(), at_cutover) << "no write went on after the cutover";
  auto completed = Ask(host_a, R"({"migrate":"complete","id":"toc"})");
  ASSERT_TRUE(completed.ok()) << completed.status().ToString();
  EXPECT_EQ(writers.errors(), 0) << writers.first_error();

  // Every acknowledged value and every preloaded entity is read back through the router.
  auto last = writers.last();
  int lost = 0;
  for (const auto& [id, v] : last) {
    std::string seen = ValueAt(router, id);
    if (seen != v && lost++ < 5) ADD_FAILURE() << id << ": acknowledged " << v << ", read " << seen;
  }
  for (int i = 0; i < 2000; ++i) {
    std::string seen = ValueAt(router, fmt::format("p{}", i));
    if (seen != "p" && lost++ < 5) ADD_FAILURE() << "p" << i << ": read " << seen;
  }
  EXPECT_EQ(lost, 0);
  std::printf("%lld writes acknowledged, %zu keys and 2000 preloaded entities read back\n",
              static_cast<long long>(writers.acknowledged()), last.size());
}

}  // namespace
}  // namespace shardkit::services::testing
