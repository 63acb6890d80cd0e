// Crash safety: a child process runs a whole CQRS node (command log, applier to a RocksDB store,
// two projections) on one directory and sends commands until the parent SIGKILLs it — while
// commands are being appended, applied and projected. Several rounds run on the same directory,
// each child recovering what the one before left. Finally the parent resends EVERY command (with
// its command id) and checks that nothing was lost and nothing applied or projected twice: the log
// holds each command once, each entity's version equals the number of its commands, and every
// read model matches the final state. This binary forks, so it holds no other test (RocksDB keeps
// threads alive in a process that opened a DB).
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <random>
#include <set>

#include "cqrs_test_util.h"

namespace shardkit::cqrs::testing {
namespace {

constexpr int kKeys = 40;
constexpr int kUsers = 7;

std::string Command(int i) {
  const std::string key = "k" + std::to_string(i % kKeys);
  return R"({"store":"save","kind":"entry","command_id":"c)" + std::to_string(i) +
         R"(","ent":{"id":")" + key + R"(","user":"u)" + std::to_string(i % kUsers) + R"(","n":)" +
         std::to_string(i) + R"(,"text":"common w)" + std::to_string(i % 13) + R"("}})";
}

void Report(int fd, const std::string& line) {
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
}

// The child: "S i" before sending command i, "A i" once it is acknowledged; until killed.
[[noreturn]] void SendUntilKilled(const std::string& dir, int start, int fd) {
  try {
    Node node(dir);
    Report(fd, "ready\n");
    for (int i = start;; ++i) {
      Report(fd, "S " + std::to_string(i) + "\n");
      auto ack = node.bus.ActAndWait(Msg(Command(i)));
      if (!ack.ok()) {
        Report(fd, "E " + ack.status().ToString() + "\n");
        _exit(4);
      }
      Report(fd, "A " + std::to_string(i) + "\n");
    }
  } catch (const std::exception& e) {
    Report(fd, std::string("E ") + e.what() + "\n");
    _exit(2);
  }
}

// Runs one child and kills it after `acks` acknowledgements; returns the highest index sent.
int RunAndKill(const std::string& dir, int start, int acks) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    SendUntilKilled(dir, start, fds[1]);
  }
  close(fds[1]);
  int max_sent = start - 1, acked = 0;
  std::string buffer;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acked < acks && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    char chunk[4096];
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, n);
    size_t eol;
    while ((eol = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 1);
      if (line.rfind("S ", 0) == 0) max_sent = std::max(max_sent, std::stoi(line.substr(2)));
      if (line.rfind("A ", 0) == 0) ++acked;
      EXPECT_NE(line[0], 'E') << line;
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  // Lines written before the kill but not read yet name later sends: read them all (the child's
  // end is closed now, so the pipe ends). A child writes "S i" before it sends i.
  char chunk[4096];
  for (ssize_t n; (n = read(fds[0], chunk, sizeof chunk)) > 0;) buffer.append(chunk, n);
  for (size_t at = 0, eol; (eol = buffer.find('\n', at)) != std::string::npos; at = eol + 1) {
    if (buffer.compare(at, 2, "S ") == 0)
      max_sent = std::max(max_sent, std::stoi(buffer.substr(at + 2, eol - at - 2)));
  }
  close(fds[0]);
  EXPECT_GE(acked, acks) << "the child stopped early";
  return max_sent;
}

TEST(CqrsCrash, KillDuringApplyAndProjectionLosesAndDuplicatesNothing) {
  TempDir dir;
  std::mt19937 rng(42);
  int next = 0;
  for (int round = 0; round < 4; ++round) {
    const int acks = 150 + static_cast<int>(rng() % 400);
    next = RunAndKill(dir.path(), next, acks) + 1;
  }
  const int total = next;  // commands 0..total-1 may have been sent; resend them all

  Node node(dir.path());
  for (int i = 0; i < total; ++i) node.Act(Command(i));
  ASSERT_TRUE(Eventually([&] { return node.CaughtUp(); }, std::chrono::seconds(60)));

  // The log holds every command exactly once.
  ASSERT_EQ(node.log->Head(), uint64_t(total));
  auto logged = node.log->Read(1, total + 1);
  ASSERT_TRUE(logged.ok());
  std::set<std::string> ids;
  // The last command of each key in log order wins. That is not always the highest number: a
  // command numbered between two rounds that no child sent is logged only by the final resend.
  std::map<int, int> last_in_log;
  for (const auto& c : *logged) {
    ids.insert(c.command_id);
    const int i = std::stoi(c.command_id.substr(1));
    last_in_log[i % kKeys] = i;
  }
  EXPECT_EQ(ids.size(), size_t(total));

  // Each entity was saved once per command: version = its number of commands; last one wins.
  std::map<std::string, int> last_user_of_key;
  std::map<std::string, int> users;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    int count = 0;
    for (int i = k; i < total; i += kKeys) ++count;
    const int last = last_in_log[k];
    auto stored = node.store->Load("entry", key);
    ASSERT_TRUE(stored.ok()) << key;
    auto ent = ParseJson(*stored, "ent");
    EXPECT_EQ((*ent)["version"].GetUint64(), uint64_t(count)) << key << " applied twice or lost";
    EXPECT_EQ((*ent)["n"].GetInt(), last) << key;
    auto projected = ParseJson(
        *node.Act(R"({"store":"load","kind":"entry","id":")" + key + R"("})").GetObjectJson("ent"),
        "ent");
    EXPECT_EQ((*projected)["n"].GetInt(), last) << key;
    ++users["u" + std::to_string(last % kUsers)];
  }
  for (int u = 0; u < kUsers; ++u) {
    const std::string user = "u" + std::to_string(u);
    EXPECT_EQ(node.Act(R"({"entries":"user","user":")" + user + R"("})").GetUint("count"),
              uint64_t(users[user]))
        << user;
  }
  EXPECT_EQ(node.Act(R"({"cqrs":"deadletter","cmd":"list"})").GetArrayJson("items"), "[]");
}

}  // namespace
}  // namespace shardkit::cqrs::testing
