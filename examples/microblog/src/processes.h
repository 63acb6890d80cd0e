// NodeProcesses: the demo's `shardkit serve` children. Each node is started from a TOML file in
// the demo's directory, waits for its ready file, and is changed only by rewriting that file and
// asking the node to reload it (sys:config,cmd:reload over its internal TCP listener).
//
// No orphans: every child gets PR_SET_PDEATHSIG (the kernel kills it if the demo dies, even by
// kill -9); StopAll() sends SIGTERM, waits, then SIGKILLs; the destructor calls StopAll(); and
// InstallInterruptHandler() makes SIGINT/SIGTERM of the demo forward SIGTERM to every child and
// raise Interrupted(), which the demo's waits check.
//
// Thread-safety: Start/Reload/StopAll from one thread; Call from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <shardkit/message/handler.h>
#include <shardkit/services/runtime.h>

namespace microblog {

struct NodeProcess {
  std::string name;
  pid_t pid = -1;
  std::string config_path, log_path;
  std::vector<std::string> urls;  // bound listeners, in config order
  std::string tcp;                // the internal TCP listener
  std::string http;               // the first HTTP listener (metrics)
  int started_in = 0;             // the demo iteration that started it
};

class NodeProcesses {
 public:
  NodeProcesses(std::string binary, std::string dir);
  ~NodeProcesses();

  // Writes <dir>/<name>.toml and starts `shardkit serve` on it; waits up to 15 s for it to listen.
  shardkit::Result<const NodeProcess*> Start(const std::string& name, const std::string& toml,
                                             int iteration);
  // Rewrites the node's config and reloads it; the reply's error (a refused config) is returned.
  shardkit::Status Reload(const std::string& name, const std::string& toml);
  // One message to the node's internal TCP listener.
  shardkit::Result<shardkit::Message> Call(
      const std::string& name, shardkit::Message message,
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  const NodeProcess* Find(const std::string& name) const;
  std::vector<const NodeProcess*> All() const;
  // Nodes that are no longer running (should be none: nothing is restarted).
  std::vector<std::string> Exited();
  // SIGTERM every child, wait up to `grace`, then SIGKILL; reaps them all. Idempotent.
  void StopAll(std::chrono::milliseconds grace = std::chrono::seconds(5));

  shardkit::services::IoRuntime& runtime() { return runtime_; }

 private:
  std::string binary_, dir_;
  shardkit::services::IoRuntime runtime_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<shardkit::Handler>> clients_;  // guarded by mu_
};

// SIGINT/SIGTERM: forward SIGTERM to the children and set Interrupted().
void InstallInterruptHandler();
bool Interrupted();
// Sleeps up to `duration`; false if interrupted.
bool SleepUnlessInterrupted(std::chrono::milliseconds duration);

}  // namespace microblog
