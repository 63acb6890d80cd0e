// ServeProcess: one real `shardkit serve` child process for integration tests, plus Shell() to
// run the CLI. Every wait is bounded.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "test_util.h"

#ifndef SHARDKIT_BINARY
#error "SHARDKIT_BINARY must name the shardkit executable"
#endif

namespace shardkit::services::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// One `shardkit serve` process; killed if still running when destroyed.
class ServeProcess {
 public:
  // `max_open_files` > 0: the child's descriptor limit (as `ulimit -n`).
  ServeProcess(const TempDir& dir, const std::string& config, int max_open_files = 0)
      : ready_(dir.File("ready")), log_(dir.File("serve.log")) {
    std::remove(ready_.c_str());
    pid_ = fork();
    if (pid_ == 0) {
      if (max_open_files > 0) {
        rlimit limit{static_cast<rlim_t>(max_open_files), static_cast<rlim_t>(max_open_files)};
        setrlimit(RLIMIT_NOFILE, &limit);
      }
      FILE* log = std::fopen(log_.c_str(), "w");
      dup2(fileno(log), 1);
      dup2(fileno(log), 2);
      execl(SHARDKIT_BINARY, "shardkit", "serve", "--config", config.c_str(), "--ready-file",
            ready_.c_str(), nullptr);
      _exit(127);
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // The bound URLs, once the ready file appears (at most 10 s).
  std::vector<std::string> WaitReady() {
    for (int i = 0; i < 1000; ++i) {
      if (std::filesystem::exists(ready_)) {
        std::vector<std::string> urls;
        std::istringstream lines(ReadFile(ready_));
        for (std::string line; std::getline(lines, line);) urls.push_back(line);
        return urls;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "shardkit serve exited early: " << ReadFile(log_);
        return {};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "shardkit serve not ready after 10 s: " << ReadFile(log_);
    return {};
  }
  void Signal(int signal_number) { kill(pid_, signal_number); }
  pid_t pid() const { return pid_; }
  // The exit code, or -1 if it does not exit within `timeout`.
  int WaitExit(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  std::string log() const { return ReadFile(log_); }

 private:
  std::string ready_;
  std::string log_;
  pid_t pid_ = -1;
};

struct ShellRun {
  int exit_code;
  std::string out;
  std::string err;
};

// Runs a shell command line in `dir`, capturing stdout and stderr.
inline ShellRun Shell(const TempDir& dir, const std::string& command) {
  std::string out = dir.File("cmd.out"), err = dir.File("cmd.err");
  int status = std::system(fmt::format("{} > {} 2> {}", command, out, err).c_str());
  return ShellRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
}

inline std::string Cli(const std::string& args) {
  return fmt::format("{} {}", SHARDKIT_BINARY, args);
}

}  // namespace shardkit::services::testing
