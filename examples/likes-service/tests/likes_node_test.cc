// The node binary end to end: `likes-node serve` from a TOML config with a SQLite store, the
// "likes" service type and a "likes-total" read model over the store's change feed, then
// `likes-node act` over TCP, as a user would run them.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#ifndef LIKES_NODE
#error "LIKES_NODE must name the likes-node binary"
#endif

namespace {

// Runs `command` in a shell; its exit code and standard output.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  std::array<char, 4096> chunk;
  while (size_t n = fread(chunk.data(), 1, chunk.size(), pipe)) out.append(chunk.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(LikesNode, ServesItsOwnServiceAndProjectionTypesBesideAStore) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("likes-node-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "node.toml") << R"(
[node]
name = "likes"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "counts"
type = "store"
backend = "sqlite"
path = "data/counts"
patterns = ["store:*,kind:likes"]
[[service]]
name = "likes"
type = "likes"
max_retries = 10
[[service]]
name = "total"
type = "projection"
projection = "likes-total"
feed = { store = "changes", kind = "likes" }
path = "data/total"
)";
  std::string node = LIKES_NODE;
  std::string serve = "cd " + dir.string() + " && exec " + node +
                      " serve --config node.toml --ready-file ready > serve.log 2>&1";
  pid_t server = fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    execl("/bin/sh", "sh", "-c", serve.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string url;
  for (int i = 0; i < 200 && url.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::string ready = ReadFile(dir / "ready");
    if (auto at = ready.find("tcp://"); at != std::string::npos)
      url = ready.substr(at, ready.find_first_of("\n\" ,]", at) - at);
  }
  ASSERT_FALSE(url.empty()) << "likes-node did not get ready: " << ReadFile(dir / "serve.log");

  for (int i = 1; i <= 3; ++i) {
    auto [code, out] = Shell(node + " act likes:add,post:p1 --to " + url);
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("\"likes\":" + std::to_string(i)), std::string::npos) << out;
  }
  auto [code, out] = Shell(node + " act likes:add --to " + url);
  EXPECT_EQ(code, 1) << out;  // the node answered with an error
  auto [get_code, got] = Shell(node + " act likes:get,post:p1 --to " + url);
  EXPECT_EQ(get_code, 0) << got;
  EXPECT_NE(got.find("\"likes\":3"), std::string::npos) << got;
  // The read model follows the store's feed: it has every like once the feed is read.
  EXPECT_EQ(Shell(node + " act likes:add,post:p2 --to " + url).first, 0);
  std::string total;
  for (int i = 0; i < 100 && total.find(R"("likes":4,"posts":2)") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    total = Shell(node + " act likes:total --to " + url).second;
  }
  EXPECT_NE(total.find(R"("likes":4,"posts":2)"), std::string::npos) << total;

  kill(server, SIGTERM);  // a graceful stop: the node drains and exits 0
  int status = 0;
  ASSERT_EQ(waitpid(server, &status, 0), server);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(dir / "serve.log");
  fs::remove_all(dir);
}

}  // namespace
