#include "patrun_compare.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace shardkit::bench {

std::unique_ptr<PatrunMatcher> PatrunMatcher::Start(const std::string& script,
                                                    const std::string& fixture_path) {
  if (script.empty()) return nullptr;
  if (!std::filesystem::exists(script)) {
    fmt::print(stderr, "bench router: no patrun comparison: {} does not exist\n", script);
    return nullptr;
  }
  signal(SIGPIPE, SIG_IGN);  // a child that died must fail a slice, not end the benchmark
  int to[2], from[2];
  if (pipe(to) != 0) return nullptr;
  if (pipe(from) != 0) {
    close(to[0]);
    close(to[1]);
    return nullptr;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[0]);
    close(to[1]);
    close(from[0]);
    close(from[1]);
    execlp("node", "node", script.c_str(), fixture_path.c_str(), nullptr);
    std::fprintf(stderr,
                 "bench router: no patrun comparison: cannot run node (Debian package nodejs)\n");
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  if (pid < 0) {
    close(to[1]);
    close(from[0]);
    return nullptr;
  }
  auto matcher = std::unique_ptr<PatrunMatcher>(new PatrunMatcher(pid, to[1], from[0]));
  // Node's start-up (loading patrun, adding 10,100 patterns) must not overlap the first slice.
  if (std::string line = matcher->ReadLine(); line != "ready") {
    if (!line.empty()) fmt::print(stderr, "bench router: patrun: {}\n", line);
    return nullptr;
  }
  return matcher;
}

std::string PatrunMatcher::ReadLine() {
  std::string line;
  char c;
  while (read(from_, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

PatrunMatcher::~PatrunMatcher() {
  close(to_);  // node exits at the end of its input
  close(from_);
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

double PatrunMatcher::Slice(int patterns, double seconds) {
  std::string request = fmt::format("{} {}\n", patterns, seconds);
  if (write(to_, request.data(), request.size()) != static_cast<ssize_t>(request.size())) return 0;
  std::string line = ReadLine();
  try {
    return std::stod(line);
  } catch (...) {
    // The child died (its error, e.g. patrun not installed: `npm ci` in tests/seneca, is on
    // stderr) or answered an error.
    if (!line.empty()) fmt::print(stderr, "bench router: patrun: {}\n", line);
    return 0;
  }
}

}  // namespace shardkit::bench
