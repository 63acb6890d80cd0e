// Crash safety: a child process writes with Durability::kSync and reports every acknowledged write
// through a pipe; the parent SIGKILLs it at a random moment, reopens the store and checks that
// data and change feed agree exactly and that every acknowledged write survived. Several rounds
// run on the same directory, so recovery is also tested on top of recovered state.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <sstream>

#include "store_test_util.h"

namespace shardkit::store::testing {
namespace {

using OpenFn = Result<std::unique_ptr<EntityStore>> (*)(const StoreOptions&);

StoreOptions CrashOptions(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.durability = Durability::kSync;
  o.purge_interval_ms = 0;
  o.rocksdb.block_cache_bytes = size_t{8} << 20;
  o.sqlite.reader_connections = 2;
  return o;
}

// "a b c\n" without operator+ chains (GCC 12 -Wrestrict false positives on those).
std::string Line(std::initializer_list<std::string_view> words) {
  std::string line;
  for (std::string_view w : words) {
    if (!line.empty()) line.push_back(' ');
    line.append(w);
  }
  line.push_back('\n');
  return line;
}

void Report(int fd, const std::string& line) {
  // One write per line, shorter than PIPE_BUF: the parent never sees half a line.
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(3);
}

// The child: writes until killed. Lines: "S <kind> <id> <version>" after a save (or each item of
// a batch) is acknowledged, "R <kind> <id>" after a remove is.
[[noreturn]] void WriteUntilKilled(OpenFn open, const std::string& path, int fd, int round) {
  auto opened = open(CrashOptions(path));
  if (!opened.ok()) {
    Report(fd, "E " + opened.status().ToString() + "\n");
    _exit(2);
  }
  EntityStore& store = **opened;
  Report(fd, "ready\n");
  for (uint64_t i = 0;; ++i) {
    std::string temp = "r", counter = "k";
    temp.append(std::to_string(round)).append("_").append(std::to_string(i));
    counter.append(std::to_string(i % 20));
    std::string ent = R"({"n":)" + std::to_string(i) + R"(,"pad":"abcdefghijklmnopqrstuvwxyz"})";
    if (i % 5 == 4) {
      std::vector<SaveRequest> batch = {{"c", counter, ent, std::nullopt, false, std::nullopt},
                                        {"b", temp, ent, std::nullopt, false, std::nullopt}};
      std::vector<Result<std::string>> results = store.SaveBatch(batch);
      std::string lines;
      for (auto& r : results) {
        if (!r.ok()) _exit(4);
        const std::string kind = &r == &results[0] ? "c" : "b";
        lines += Line({"S", kind, IdOf(*r), std::to_string(VersionOf(*r))});
      }
      Report(fd, lines);
      continue;
    }
    Result<std::string> saved = store.Save({"c", counter, ent, std::nullopt, false, std::nullopt});
    if (!saved.ok()) _exit(4);
    Report(fd, Line({"S", "c", counter, std::to_string(VersionOf(*saved))}));
    Result<std::string> temp_saved =
        store.Save({"t", temp, ent, std::nullopt, false, std::nullopt});
    if (!temp_saved.ok()) _exit(4);
    Report(fd, Line({"S", "t", temp, "1"}));
    if (!store.Remove("t", temp).ok()) _exit(4);
    Report(fd, Line({"R", "t", temp}));
  }
}

struct Acked {
  uint64_t version = 0;
  bool removed = false;
};

// Reads lines from `fd` until `deadline` (or EOF when deadline is nullopt).
std::string ReadUntil(int fd, std::optional<std::chrono::steady_clock::time_point> deadline,
                      const std::string& stop_after = {}) {
  std::string text;
  char buffer[4096];
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return text;
      timeout_ms = static_cast<int>(left.count());
    }
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready == 0) return text;
    if (ready < 0) continue;
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) return text;
    text.append(buffer, static_cast<size_t>(n));
    if (!stop_after.empty() && text.find(stop_after) != std::string::npos) return text;
  }
}

void CheckFeedAgreesWithData(EntityStore& store) {
  std::map<std::tuple<std::string, uint64_t, std::string>, ChangeRecord> latest;
  uint64_t expected_sequence = store.feed().FirstRetainedSequence();
  ASSERT_EQ(expected_sequence, 1u);
  for (;;) {
    Result<std::vector<ChangeRecord>> chunk = store.feed().ReadChanges(expected_sequence, 1000);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    if (chunk->empty()) break;
    for (ChangeRecord& c : *chunk) {
      ASSERT_EQ(c.sequence, expected_sequence) << "sequence numbers must be contiguous";
      ++expected_sequence;
      latest[{c.kind, c.ksid, c.id}] = std::move(c);
    }
  }
  EXPECT_EQ(expected_sequence - 1, store.feed().LastSequence());

  std::map<std::tuple<std::string, uint64_t, std::string>, std::string> stored;
  ASSERT_TRUE(store
                  .ScanRange("", {},
                             [&](const EntityRecord& r) {
                               stored[{r.kind, r.ksid, r.id}] = r.value;
                               return true;
                             })
                  .ok());
  for (const auto& [key, value] : stored) {
    auto it = latest.find(key);
    ASSERT_NE(it, latest.end()) << "stored entity without a feed record: " << std::get<2>(key);
    EXPECT_EQ(it->second.op, ChangeOp::kSave) << std::get<2>(key);
    EXPECT_EQ(it->second.value, value) << std::get<2>(key);
  }
  for (const auto& [key, record] : latest) {
    if (record.op == ChangeOp::kSave) {
      EXPECT_TRUE(stored.contains(key)) << "feed says saved, data has nothing: " << record.id;
    } else {
      EXPECT_FALSE(stored.contains(key)) << "feed says removed, data has it: " << record.id;
    }
  }
}

// A random seed, printed with every failure of the calling test.
unsigned Seed() {
  const auto seed =
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::cout << "seed " << seed << "\n";
  return seed;
}

// Forks a child running `write(fd)` (it reports "ready\n" first, then one line per acknowledged
// write, until killed), SIGKILLs it 20..250 ms after it is ready and returns all it reported.
// Failures are recorded with ADD_FAILURE; the text then lacks what was missing.
std::string RunUntilKilled(std::mt19937& rng, const std::function<void(int fd)>& write) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return {};
  }
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    write(fds[1]);
    _exit(5);  // writers never return
  }
  close(fds[1]);
  std::string text =
      ReadUntil(fds[0], std::chrono::steady_clock::now() + std::chrono::seconds(20), "ready\n");
  EXPECT_NE(text.find("ready\n"), std::string::npos) << "child did not start: " << text;
  text += ReadUntil(
      fds[0], std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 250)(rng)));
  EXPECT_EQ(kill(child, SIGKILL), 0);
  int wstatus = 0;
  EXPECT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus)) << "child exited by itself, status " << wstatus << ": " << text;
  text += ReadUntil(fds[0], std::nullopt);
  close(fds[0]);
  return text;
}

void RunCrashRounds(OpenFn open, int rounds) {
  TempDir dir;
  const std::string path = dir.path() + "/store";
  std::mt19937 rng(Seed());
  std::map<std::pair<std::string, std::string>, Acked> acked;  // (kind, id) -> last acknowledged
  size_t total_acked = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string text =
        RunUntilKilled(rng, [&](int fd) { WriteUntilKilled(open, path, fd, round); });
    ASSERT_FALSE(::testing::Test::HasFailure());

    std::istringstream lines(text);
    std::string op, kind, id;
    while (lines >> op) {
      if (op == "ready") continue;
      ASSERT_TRUE(op == "S" || op == "R") << op;
      lines >> kind >> id;
      if (op == "S") {
        uint64_t version = 0;
        lines >> version;
        acked[{kind, id}] = {version, false};
      } else {
        acked[{kind, id}].removed = true;
      }
      ++total_acked;
    }

    StoreOptions options = CrashOptions(path);
    auto reopened = open(options);
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EntityStore& store = **reopened;
    CheckFeedAgreesWithData(store);
    for (const auto& [key, state] : acked) {
      const auto& [kind, id] = key;
      Result<std::string> loaded = store.Load(kind, id);
      if (state.removed) {
        EXPECT_EQ(loaded.status().code(), Code::kNotFound) << "acknowledged remove lost: " << id;
      } else if (kind == "t") {
        // Saved and acknowledged; its remove may have committed unacknowledged before the kill.
        EXPECT_TRUE(loaded.ok() || loaded.status().code() == Code::kNotFound) << id;
      } else {
        ASSERT_TRUE(loaded.ok()) << "acknowledged save lost: " << kind << "/" << id;
        EXPECT_GE(VersionOf(*loaded), state.version) << "acknowledged update lost: " << id;
      }
    }
  }
  EXPECT_GT(total_acked, 0u);
  std::cout << "crash rounds: " << rounds << ", acknowledged writes checked: " << total_acked
            << "\n";
}

// Keyed updates of one counter entity: the request of step i of a round (its idempotency key and
// entity) is a function of (round, i), so the parent can send the same request again.
std::string KeyedEnt(int i) { return R"({"n":)" + std::to_string(i) + "}"; }
std::string KeyOf(int round, int i) {
  std::string key = "u";
  key.append(std::to_string(round)).append("_").append(std::to_string(i));
  return key;
}

// The child of the keyed crash test: updates the counter until killed, reporting "U <i> <version>"
// after each acknowledged update.
[[noreturn]] void UpdateKeyedUntilKilled(OpenFn open, const std::string& path, int fd, int round) {
  auto opened = open(CrashOptions(path));
  if (!opened.ok()) {
    Report(fd, "E " + opened.status().ToString() + "\n");
    _exit(2);
  }
  Report(fd, "ready\n");
  for (int i = 0;; ++i) {
    Result<std::string> saved = (*opened)->Save(
        {"ctr", "c", KeyedEnt(i), std::nullopt, false, std::nullopt}, KeyOf(round, i));
    if (!saved.ok()) _exit(4);
    Report(fd, Line({"U", std::to_string(i), std::to_string(VersionOf(*saved))}));
  }
}

// Kills the child at a random moment, reopens, and sends every update of the round again (and the
// one that may have been in flight): the acknowledged ones must answer their first version and
// the counter must count each update exactly once.
void RunKeyedCrashRounds(OpenFn open, int rounds) {
  TempDir dir;
  const std::string path = dir.path() + "/store";
  std::mt19937 rng(Seed());
  uint64_t applied = 0;  // updates counted so far (the counter's version)
  size_t replayed = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string text =
        RunUntilKilled(rng, [&](int fd) { UpdateKeyedUntilKilled(open, path, fd, round); });
    ASSERT_FALSE(::testing::Test::HasFailure());
    std::map<int, uint64_t> acked;  // step -> version answered
    std::istringstream lines(text);
    std::string op;
    while (lines >> op) {
      if (op == "ready") continue;
      ASSERT_EQ(op, "U");
      int i = 0;
      uint64_t version = 0;
      lines >> i >> version;
      acked[i] = version;
    }
    auto reopened = open(CrashOptions(path));
    ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
    EntityStore& store = **reopened;
    const int last = acked.empty() ? -1 : acked.rbegin()->first;
    for (int i = 0; i <= last + 1; ++i) {
      Result<std::string> again =
          store.Save({"ctr", "c", KeyedEnt(i), std::nullopt, false, std::nullopt}, KeyOf(round, i));
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      if (acked.contains(i)) {
        EXPECT_EQ(VersionOf(*again), acked[i]) << "acknowledged update " << i << " applied twice";
        ++replayed;
      }
    }
    applied += static_cast<uint64_t>(last + 2);
    Result<std::string> counter = store.Load("ctr", "c");
    ASSERT_TRUE(counter.ok()) << counter.status().ToString();
    EXPECT_EQ(VersionOf(*counter), applied) << "round " << round;
  }
  EXPECT_GT(replayed, 0u);
  std::cout << "keyed crash rounds: " << rounds << ", acknowledged updates resent: " << replayed
            << "\n";
}

TEST(store_crash, RocksDbKilledMidWriteKeepsEveryAcknowledgedWriteAndFeedAgreesWithData) {
  RunCrashRounds(&OpenRocksDbStore, 3);
}

TEST(store_crash, SqliteKilledMidWriteKeepsEveryAcknowledgedWriteAndFeedAgreesWithData) {
  RunCrashRounds(&OpenSqliteStore, 3);
}

TEST(store_crash, RocksDbKeyedUpdatesResentAfterAKillAreAppliedOnce) {
  RunKeyedCrashRounds(&OpenRocksDbStore, 3);
}

TEST(store_crash, SqliteKeyedUpdatesResentAfterAKillAreAppliedOnce) {
  RunKeyedCrashRounds(&OpenSqliteStore, 3);
}

}  // namespace
}  // namespace shardkit::store::testing
