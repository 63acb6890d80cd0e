// Nodes in separate network namespaces, joined by a veth pair with addresses this test assigns:
// the NATS server and a router in one namespace, an echo node in another whose loopback is DOWN,
// so anything that quietly used 127.0.0.1 would fail. Skipped, saying why, where namespaces
// cannot be created (not root, no `ip`, no CAP_NET_ADMIN in a container).
#include <thread>

#include "nats_server.h"
#include "netns_serve.h"

namespace shardkit::services::testing {
namespace {

using namespace std::chrono_literals;

struct Namespaces {
  std::string a, b, va, vb, address_a, address_b, problem;
  bool ok = false;

  Namespaces() {
    int id = getpid() % 50000;
    a = fmt::format("skns-a-{}", id);
    b = fmt::format("skns-b-{}", id);
    va = fmt::format("skva{}", id);
    vb = fmt::format("skvb{}", id);
    int subnet = 16 + id % 200;
    address_a = fmt::format("10.213.{}.1", subnet);
    address_b = fmt::format("10.213.{}.2", subnet);
    if (geteuid() != 0) {
      problem = "needs root to create network namespaces (ip netns)";
      return;
    }
    if (std::system("command -v ip >/dev/null 2>&1") != 0) {
      problem = "the ip tool (package iproute2) is not installed";
      return;
    }
    for (const std::string& step : {
             fmt::format("ip netns add {}", a), fmt::format("ip netns add {}", b),
             fmt::format("ip link add {} type veth peer name {}", va, vb),
             fmt::format("ip link set {} netns {}", va, a),
             fmt::format("ip link set {} netns {}", vb, b),
             fmt::format("ip -n {} addr add {}/24 dev {}", a, address_a, va),
             fmt::format("ip -n {} addr add {}/24 dev {}", b, address_b, vb),
             fmt::format("ip -n {} link set {} up", a, va),
             fmt::format("ip -n {} link set {} up", b, vb),
             fmt::format("ip -n {} link set lo up", a),  // b's loopback stays down
         }) {
      std::string command = step + " 2>/tmp/skns-err-" + std::to_string(id);
      if (std::system(command.c_str()) != 0) {
        problem = fmt::format("cannot create network namespaces here ('{}' failed: {})", step,
                              ReadFile("/tmp/skns-err-" + std::to_string(id)));
        return;
      }
    }
    ok = true;
  }
  ~Namespaces() {
    // Deleting a namespace deletes the veth end in it (and so the pair).
    (void)std::system(fmt::format("ip netns del {} 2>/dev/null", a).c_str());
    (void)std::system(fmt::format("ip netns del {} 2>/dev/null", b).c_str());
    std::remove(fmt::format("/tmp/skns-err-{}", getpid() % 50000).c_str());
  }
};

TEST(ClusterNetnsTest, NodesInSeparateNamespacesMeetOverAVethPair) {
  Namespaces ns;
  SHARDKIT_REQUIRE_COMPONENT(ns.ok, ns.problem, "iproute2");
  NatsServer nats(ns.address_a, "ip netns exec " + ns.a);
  ASSERT_TRUE(nats.ok()) << nats.problem();

  NsServe echo(ns.b, fmt::format(R"(
[node]
name = "echo-b"
[[listener]]
url = "tcp://{}:0"
[[service]]
name = "echo-b"
type = "echo"
[cluster]
nats = "{}"
)",
                                 ns.address_b, nats.url()));
  NsServe router(ns.a, fmt::format(R"(
[node]
name = "router-a"
[[listener]]
url = "tcp://{}:0"
[cluster]
nats = "{}"
)",
                                   ns.address_a, nats.url()));
  ASSERT_FALSE(echo.WaitReady().empty());
  auto urls = router.WaitReady();
  ASSERT_FALSE(urls.empty());
  EXPECT_EQ(urls[0].find("127.0.0.1"), std::string::npos);

  // From namespace a: the router sends role:echo over NATS, across the veth, to the node in b.
  TempDir dir;
  ShellRun run{1, "", ""};
  for (int i = 0; i < 100 && run.out.find("echo-b") == std::string::npos; ++i) {
    run = Shell(dir, fmt::format("ip netns exec {} {} act --to {} role:echo,x:1", ns.a,
                                 SHARDKIT_BINARY, urls[0]));
    if (run.out.find("echo-b") == std::string::npos) std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(run.out.find(R"("served_by":"echo-b")"), std::string::npos)
      << run.out << run.err << "\necho log:\n"
      << echo.log() << "\nrouter log:\n"
      << router.log();
}

}  // namespace
}  // namespace shardkit::services::testing
