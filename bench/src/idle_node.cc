#include "idle_node.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "serve_node.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"

namespace shardkit::bench {
namespace {

// The service types whose instances do background work: stores (TTL purge, WAL sync), a cache
// (the `cache` service type starts no feed follower), a command log's applier and writer, a
// projection reading the log.
std::string IdleNodeConfig(const std::string& dir) {
  std::string toml = NodeConfigHead("idle");
  toml += ServiceConfig("map", "shard-map", "ranges = [\"-80\", \"80-\"]");
  for (const auto& [name, shard] : {std::pair{"left", "-80"}, std::pair{"right", "80-"}}) {
    toml += ServiceConfig(name, "store",
                          fmt::format("path = \"{}/{}\"\nshard = \"{}\"", dir, name, shard));
  }
  toml += ServiceConfig("router", "shard-router",
                        R"(patterns = ["store:*", "store:*,kind:entry,cache:true"])");
  toml += ServiceConfig("entry-cache", "cache", R"(patterns = ["store:*,kind:entry"])");
  toml += ServiceConfig("commands", "command-log", fmt::format("path = \"{}/log\"", dir));
  toml += ServiceConfig("target", "store",
                        fmt::format(R"(path = "{}/posts"
patterns = ["store:*,kind:post,cqrs:apply", "store:changes,kind:post"])",
                                    dir));
  toml += ServiceConfig(
      "entities", "projection",
      fmt::format("projection = \"entities\"\nlog = \"commands\"\npath = \"{}/entities\"", dir));
  return toml + RouteConfig("store:save,kind:post", "commands");
}

// User plus system CPU time of this process, in seconds (/proc/self/stat fields 14 and 15).
double ProcessCpuSeconds() {
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces; the fields after it start past its ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stol(field);
    if (index == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

double MeasureIdleNodeCpuPercent(double seconds, const std::string& nats_url) {
  namespace fs = std::filesystem;
  // A directory of its own per call: a node's command log and stores outlive it in the process's
  // service directory.
  static int calls = 0;
  fs::path dir =
      fs::temp_directory_path() / fmt::format("shardkit-bench-idle-{}-{}", ::getpid(), ++calls);
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string toml = IdleNodeConfig(dir.string());
  if (!nats_url.empty()) {
    // The NATS link's I/O thread and the cluster agent's watches and heartbeat.
    toml += fmt::format("[[listener]]\nurl = \"{0}\"\n[cluster]\nnats = \"{0}\"\n", nats_url);
  }
  auto config = services::ParseNodeConfig(toml, "bench-idle.toml");
  if (!config.ok()) throw std::runtime_error(config.status().ToString());
  auto node = services::Node::Start(std::move(config).value());
  if (!node.ok()) throw std::runtime_error(node.status().ToString());
  // Let start-up work (opening RocksDB, first polls) settle before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double cpu_before = ProcessCpuSeconds();
  auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  double cpu = ProcessCpuSeconds() - cpu_before;
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  (*node)->Stop(std::chrono::milliseconds(1000));
  node->reset();
  fs::remove_all(dir);
  return wall > 0 ? 100.0 * cpu / wall : 0;
}

}  // namespace shardkit::bench
