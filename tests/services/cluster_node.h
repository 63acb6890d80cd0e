// ClusterNode: one `shardkit serve` process in cluster mode over a test's nats-server, and the
// helpers the cluster tests share (an echo service's config, waiting for a route to the cluster).
#pragma once

#include <functional>

#include "nats_server.h"
#include "serve_process.h"

namespace shardkit::services::testing {

using namespace std::chrono_literals;

// One `shardkit serve` process in cluster mode with a TCP listener (for the test to talk to it).
struct ClusterNode {
  ClusterNode(const std::string& nats_url, const std::string& name, const std::string& services,
              const std::string& cluster_extra = {}) {
    std::string config =
        dir.Write("node.toml", fmt::format(R"(
[node]
name = "{}"
stop_grace_ms = 2000
[[listener]]
url = "tcp://127.0.0.1:0"
{}
[cluster]
nats = "{}"
ttl_ms = 3000
{}
)",
                                           name, services, nats_url, cluster_extra));
    process = std::make_unique<ServeProcess>(dir, config);
    auto urls = process->WaitReady();
    if (!urls.empty()) url = urls.at(0);
  }
  Handler& client() {
    if (!client_) client_ = Client(runtime, url, ClientOptions{.timeout = 5s});
    return *client_;
  }
  Result<Message> Act(std::string_view json) { return CallAndWait(client(), Msg(json)); }

  TempDir dir;
  std::unique_ptr<ServeProcess> process;
  std::string url;
  IoRuntime runtime{1};
  std::shared_ptr<Handler> client_;
};

inline std::string EchoService(const std::string& name, const std::string& pattern = "role:echo") {
  return fmt::format(R"(
[[service]]
name = "{}"
type = "echo"
patterns = ["{}"]
)",
                     name, pattern);
}

// Polls `ready` every 20 ms for up to `timeout`.
inline bool Eventually(const std::function<bool()>& ready, std::chrono::milliseconds timeout = 5s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (ready()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return ready();
}

// Whether `node` routes `pattern` to the cluster (it has seen another node serve it).
inline bool RoutesToCluster(ClusterNode& node, const std::string& pattern, size_t nodes = 1) {
  auto routes = node.Act(R"({"sys":"config","cmd":"routes"})");
  if (!routes.ok()) return false;
  std::string text = std::string(routes->GetArrayJson("routes").value_or(""));
  size_t at = text.find("\"pattern\":\"" + pattern + "\"");
  if (at == std::string::npos) return false;
  size_t end = text.find('}', at);
  std::string route = text.substr(at, end - at);
  if (route.find("cluster:") == std::string::npos) return false;
  return static_cast<size_t>(std::count(route.begin(), route.end(), ',')) + 1 >= nodes + 1;
}

}  // namespace shardkit::services::testing
