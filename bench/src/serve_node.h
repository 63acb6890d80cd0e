// One `shardkit serve` child process for the benchmarks that run real nodes (cache --remote,
// split --remote): this very binary, started on its own config, port 0, the bound URL read from
// its --ready-file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "shardkit/services/client.h"

namespace shardkit::bench {

// Stopped (SIGTERM, then SIGKILL after 5 s) when destroyed. Not thread-safe; one owner.
class ServeNode {
 public:
  // Writes `config` to `dir`/node.toml and starts the node; returns once it serves. Throws
  // std::runtime_error (with the node's log) if it exits or is not ready in 30 s.
  ServeNode(const std::string& dir, const std::string& config);
  ~ServeNode();
  ServeNode(const ServeNode&) = delete;
  ServeNode& operator=(const ServeNode&) = delete;

  const std::string& url() const { return url_; }
  // The config file the node reads again on `sys:config,cmd:reload`.
  const std::string& config_path() const { return config_path_; }

 private:
  std::string config_path_;
  std::string ready_;
  std::string url_;
  pid_t pid_ = -1;
};

// A TCP client of the node at `url` with `connections` connections; throws std::runtime_error if
// the URL is bad.
std::shared_ptr<Handler> ClientOf(services::IoRuntime& runtime, const std::string& url,
                                  int connections,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Config text for the benchmarks' nodes. The head: [node] called `name`, with one TCP listener on
// 127.0.0.1, port 0.
std::string NodeConfigHead(const std::string& name);
// A [[service]] table: `name`, `type`, then `settings` (more TOML lines, newline-separated).
std::string ServiceConfig(const std::string& name, const std::string& type,
                          const std::string& settings = "");
// A [[route]] table sending `pattern` (written as a TOML literal string) to `to`, then `settings`.
std::string RouteConfig(const std::string& pattern, const std::string& to,
                        const std::string& settings = "");

}  // namespace shardkit::bench
