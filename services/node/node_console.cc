// The node's side of its web console (services/console): what the console reads of the node.
#include <filesystem>

#include <fmt/format.h>

#include "console.h"
#include "node_impl.h"
#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

// The bytes of the files under `path` (a RocksDB folder or a SQLite file and its journal); -1 if
// there is none.
int64_t BytesOnDisk(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return -1;
  if (!std::filesystem::is_directory(path, ec)) {
    int64_t total = 0;
    for (const char* suffix : {"", "-wal", "-journal"}) {
      auto size = std::filesystem::file_size(path + suffix, ec);
      if (!ec) total += static_cast<int64_t>(size);
    }
    return total;
  }
  int64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += static_cast<int64_t>(it->file_size(size_ec));
  }
  return total;
}

}  // namespace

std::optional<std::vector<ConsoleService>> Node::Impl::ConsoleServices() {
  // Called on an I/O thread: a reload holding the config must not block it.
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return std::nullopt;
  std::vector<ConsoleService> out;
  for (const ServiceConfig& service : config_.services) {
    ConsoleService shown{service.name, service.type, "", "", ""};
    auto setting = [&](std::string_view key, std::string_view absent) {
      auto value = service.settings.GetString(key, std::string(absent));
      return value.ok() ? *value : std::string();
    };
    if (service.type == "store") {
      shown.backend = setting("backend", "rocksdb");
      shown.shard = setting("shard", "");
      if (shown.backend != "memory") shown.bytes = BytesOnDisk(setting("path", ""));
    } else if (service.type == "shard-map") {
      shown.map = setting("map", "main");
    }
    out.push_back(std::move(shown));
  }
  return out;
}

std::string Node::Impl::ConsoleCluster(const std::string& self) const {
  if (!cluster_) return "";
  std::map<std::string, size_t> patterns;  // node -> patterns it serves
  for (const auto& [pattern, nodes] : cluster_->RemotePatterns()) {
    for (const auto& node : nodes) ++patterns[node];
  }
  std::string list = "[";
  list += JsonObject()
              .Add("node", self)
              .AddBool("self", true)
              .AddBool("connected", cluster_->link()->connected())
              .str();
  for (const auto& [node, count] : patterns) {
    // In the registry: its key is refreshed, so the node is up (docs/cluster.md).
    list += ',' +
            JsonObject().Add("node", node).AddBool("registered", true).Add("patterns", count).str();
  }
  return list + "]";
}

void Node::Impl::StartConsole(ListenerHooks& hooks) {
  bool wanted = false;
  for (const ListenerConfig& listener : config_.listeners)
    wanted = wanted || (listener.console && listener.endpoint.scheme == Scheme::kHttp);
  if (!wanted) return;
  ConsoleSources sources;
  sources.bus = &bus_;
  sources.node = config_.name;
  sources.services = [this] { return ConsoleServices(); };
  sources.cluster_json = [this, self = config_.name] { return ConsoleCluster(self); };
  console_ = std::make_shared<Console>(std::move(sources));
  // Phase changes of this node's migrations, for the history the page shows.
  (void)bus_.Observe("info:migrate",
                     MakeHandler([console = console_](Message m, const Context&, ReplyFn reply) {
                       console->Observe(m);
                       reply(Message());
                     }));
  hooks.console = [console = console_](PageRequest request, const ListenerConfig& listener,
                                       std::function<void(PageResponse)> respond) {
    console->Serve(std::move(request), listener, std::move(respond));
  };
}

}  // namespace shardkit::services
