// `shardkit demo --quick` end to end: eight real `shardkit serve` processes on 127.0.0.1, driven
// through the front's HTTP listener. Checks the summary a user reads (zero errors, a cache that
// hits, a completed live split, no node restarted) and that no node process outlives the demo,
// however it ends: normally, by ctrl-C (SIGINT) or by kill -9.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SHARDKIT_BINARY
#error "SHARDKIT_BINARY must name the shardkit executable"
#endif

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "microblog-demo-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One `shardkit demo` run with its output in a file.
class DemoRun {
 public:
  DemoRun(const TempDir& dir, std::vector<std::string> extra) : out_(dir.path() + "/demo.out") {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<std::string> args = {"shardkit", "demo", "--quick", "--dir", dir.path() + "/run"};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(SHARDKIT_BINARY, argv.data());
      _exit(127);
    }
  }
  ~DemoRun() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string output() const { return ReadFile(out_); }
  // Waits until the output contains `text` (false after `timeout` or if the demo exits).
  bool WaitFor(const std::string& text, std::chrono::seconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (output().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void Signal(int signal_number) { kill(pid_, signal_number); }
  // The exit code (128 + signal when killed), or -1 if it has not exited within `timeout`.
  int WaitExit(std::chrono::seconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  // The node pids the demo reported ("started node NAME pid N").
  std::vector<pid_t> NodePids() const {
    std::vector<pid_t> pids;
    std::string text = output();
    std::regex started(R"(started node \S+\s+pid (\d+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), started);
         it != std::sregex_iterator(); ++it)
      pids.push_back(std::stoi((*it)[1]));
    return pids;
  }

 private:
  std::string out_;
  pid_t pid_ = -1;
};

// Node processes still alive (not zombies: those are dead and only await their parent).
std::vector<pid_t> Alive(const std::vector<pid_t>& pids, std::chrono::seconds within) {
  auto until = std::chrono::steady_clock::now() + within;
  std::vector<pid_t> alive;
  do {
    alive.clear();
    for (pid_t pid : pids) {
      std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
      if (!stat.empty() && stat.find(") Z ") == std::string::npos) alive.push_back(pid);
    }
    if (alive.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < until);
  return alive;
}

TEST(MicroblogDemo, QuickRunHasNoErrorsACacheThatHitsACompletedSplitAndNoOrphans) {
  TempDir dir;
  DemoRun demo(dir, {});
  int code = demo.WaitExit(std::chrono::seconds(240));
  std::string out = demo.output();
  ASSERT_EQ(code, 0) << out;
  std::smatch result;
  ASSERT_TRUE(std::regex_search(
      out, result,
      std::regex(R"(demo-result: errors=(\d+) requests=(\d+) cache_hit_ratio=([0-9.]+) )"
                 R"(split=(\w+) pause_ms=([0-9.-]+) restarts=(\d+))")))
      << out;
  EXPECT_EQ(result[1], "0") << out;
  EXPECT_GT(std::stoull(result[2]), 100u) << out;
  EXPECT_GT(std::stod(result[3]), 0.0) << out;
  EXPECT_EQ(result[4], "completed") << out;
  EXPECT_GE(std::stod(result[5]), 0.0) << out;
  EXPECT_EQ(result[6], "0") << out;
  // Every iteration happened, with the services of the case study.
  for (const char* node : {"front", "post", "entry-store", "index", "entry-cache", "follow",
                           "timeline", "fanout", "timeline-b"}) {
    EXPECT_NE(out.find(std::string("started node ") + node), std::string::npos) << node;
  }
  auto pids = demo.NodePids();
  EXPECT_EQ(pids.size(), 9u) << out;
  EXPECT_TRUE(Alive(pids, std::chrono::seconds(1)).empty()) << "node processes outlived the demo";
}

TEST(MicroblogDemo, CtrlCStopsEveryNode) {
  TempDir dir;
  DemoRun demo(dir, {"--keep-running"});
  ASSERT_TRUE(demo.WaitFor("Iteration 1", std::chrono::seconds(60))) << demo.output();
  auto pids = demo.NodePids();
  ASSERT_GE(pids.size(), 3u) << demo.output();
  demo.Signal(SIGINT);
  int code = demo.WaitExit(std::chrono::seconds(30));
  EXPECT_EQ(code, 130) << demo.output();
  EXPECT_TRUE(Alive(pids, std::chrono::seconds(1)).empty()) << demo.output();
}

TEST(MicroblogDemo, KillMinusNineOfTheDemoTakesItsNodesWithIt) {
  TempDir dir;
  DemoRun demo(dir, {});
  ASSERT_TRUE(demo.WaitFor("Iteration 1", std::chrono::seconds(60))) << demo.output();
  auto pids = demo.NodePids();
  ASSERT_GE(pids.size(), 3u) << demo.output();
  demo.Signal(SIGKILL);
  EXPECT_EQ(demo.WaitExit(std::chrono::seconds(10)), 128 + SIGKILL);
  // Orphans are re-parented to init, which reaps them: gone means gone from /proc.
  EXPECT_TRUE(Alive(pids, std::chrono::seconds(5)).empty()) << demo.output();
}

}  // namespace
