// NsServe: one `shardkit serve` process inside a network namespace (`ip netns exec`), for the
// tests that put nodes on hosts of their own.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "serve_process.h"

namespace shardkit::services::testing {

// `shardkit serve` inside namespace `ns` (ip netns exec keeps the pid: it execs the program).
class NsServe {
 public:
  NsServe(const std::string& ns, const std::string& config_text)
      : ready_(dir_.File("ready")), log_(dir_.File("serve.log")) {
    std::string config = dir_.Write("node.toml", config_text);
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::fopen(log_.c_str(), "w");
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
      execlp("ip", "ip", "netns", "exec", ns.c_str(), SHARDKIT_BINARY, "serve", "--config",
             config.c_str(), "--ready-file", ready_.c_str(), nullptr);
      _exit(127);
    }
  }
  ~NsServe() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::vector<std::string> WaitReady() {
    for (int i = 0; i < 1000; ++i) {
      if (std::filesystem::exists(ready_)) {
        std::vector<std::string> urls;
        std::istringstream lines(ReadFile(ready_));
        for (std::string line; std::getline(lines, line);) urls.push_back(line);
        return urls;
      }
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "shardkit serve did not get ready: " << ReadFile(log_);
    return {};
  }
  std::string log() const { return ReadFile(log_); }

 private:
  TempDir dir_;
  std::string ready_, log_;
  pid_t pid_ = -1;
};

}  // namespace shardkit::services::testing
