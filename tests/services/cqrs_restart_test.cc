// A CQRS node (docs/cqrs.md, "In a node config": a command log, its target store and several
// projections, so the node is slow to start) as a real `shardkit serve` process, killed with
// SIGKILL at random moments while clients send commands, and started again, many times. At the end
// every command ever sent is sent once more with its command id (so each has a known position),
// and the target store must hold each command applied exactly once: the change feed shows each
// position once, each entity's version counts its commands, and there are no dead letters.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <rapidjson/document.h>

#include "serve_process.h"

namespace shardkit::services::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kKeys = 24;
constexpr int kClients = 6;
constexpr int kCycles = 24;

std::string Config(const TempDir& dir) {
  return dir.Write("node.toml", fmt::format(R"(
[node]
name = "cqrs"
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "commands"
type = "command-log"
path = "{0}/log"
[[service]]
name = "target"
type = "store"
path = "{0}/entries"
patterns = ["store:*,kind:entry,cqrs:apply", "store:changes,kind:entry"]
[[service]]
name = "entities"
type = "projection"
projection = "entities"
log = "commands"
path = "{0}/entities"
[[service]]
name = "copy-1"
type = "projection"
projection = "entities"
log = "commands"
path = "{0}/copy-1"
patterns = ["store:load,kind:entry,copy:1"]
[[service]]
name = "copy-2"
type = "projection"
projection = "entities"
log = "commands"
path = "{0}/copy-2"
patterns = ["store:load,kind:entry,copy:2"]
[[service]]
name = "copy-3"
type = "projection"
projection = "entities"
log = "commands"
path = "{0}/copy-3"
patterns = ["store:load,kind:entry,copy:3"]
[[service]]
name = "feed-copy"
type = "projection"
projection = "entities"
feed = {{ store = "changes", kind = "entry" }}
path = "{0}/feed-copy"
patterns = ["store:load,kind:entry,copy:feed"]
[[route]]
pattern = "store:save,kind:entry"
to = "commands"
)",
                                            dir.path()));
}

// Every command the clients sent: command id -> key, and the position of the acknowledged ones.
struct Ledger {
  std::mutex mu;
  std::map<std::string, std::string> key_of;    // guarded by mu
  std::map<std::string, uint64_t> position_of;  // guarded by mu
};

std::string Command(const std::string& command_id, const std::string& key, int n) {
  return fmt::format(
      R"({{"store":"save","kind":"entry","command_id":"{}","ent":{{"id":"{}","user":"u{}","n":{},"text":"word{}"}}}})",
      command_id, key, n % 5, n, n % 7);
}

// Sends commands until `stop`; records each before sending and its position once acknowledged.
void SendCommands(const std::string& url, int client, std::atomic<bool>& stop, Ledger& ledger,
                  int& sequence) {
  IoRuntime runtime(1);
  auto handler = Client(runtime, url, ClientOptions{.timeout = 3s});
  std::mt19937 rng(static_cast<uint32_t>(client * 7919 + sequence));
  while (!stop.load()) {
    const std::string id = fmt::format("c{}-{}", client, sequence++);
    const std::string key = "k" + std::to_string(rng() % kKeys);
    {
      std::lock_guard lock(ledger.mu);
      ledger.key_of[id] = key;
    }
    auto ack = CallAndWait(*handler, Msg(Command(id, key, sequence)));
    if (!ack.ok()) {
      std::this_thread::sleep_for(5ms);  // the node is gone: the command is resent at the end
      continue;
    }
    std::lock_guard lock(ledger.mu);
    ledger.position_of[id] = ack->GetUint("position").value_or(0);
  }
}

// The applier's numbers from cqrs:status (applied, head, dead letters).
struct ApplierStatus {
  uint64_t applied = 0, head = 0, dead_letters = 0;
};
std::optional<ApplierStatus> StatusOf(Handler& client) {
  auto reply = CallAndWait(client, Msg(R"({"cqrs":"status","service":"commands"})"));
  if (!reply.ok()) return std::nullopt;
  rapidjson::Document items;
  auto text = reply->GetArrayJson("items").value_or("[]");
  items.Parse(text.data(), text.size());
  if (!items.IsArray() || items.Empty()) return std::nullopt;
  const auto& item = items[0];
  return ApplierStatus{item["applied"].GetUint64(), item["head"].GetUint64(),
                       item["dead_letters"].GetUint64()};
}

// Every change of kind entry in the target's feed: position stamp -> how many saves carry it.
std::map<uint64_t, int> ChangesByPosition(Handler& client) {
  std::map<uint64_t, int> seen;
  for (uint64_t from = 1;;) {
    auto reply = CallAndWait(
        client,
        Msg(fmt::format(R"({{"store":"changes","kind":"entry","from":{},"limit":5000}})", from)));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return seen;
    rapidjson::Document changes;
    auto text = reply->GetArrayJson("changes").value_or("[]");
    changes.Parse(text.data(), text.size());
    if (!changes.IsArray() || changes.Empty()) return seen;
    for (const auto& change : changes.GetArray()) {
      from = change["seq"].GetUint64() + 1;
      if (change.HasMember("ent") && change["ent"].HasMember("cqrs$position"))
        ++seen[change["ent"]["cqrs$position"].GetUint64()];
    }
  }
}

TEST(CqrsServeRestart, KillNineUnderCommandLoadAppliesEveryAcknowledgedCommandExactlyOnce) {
  TempDir dir;
  const std::string config = Config(dir);
  Ledger ledger;
  std::vector<int> sequences(kClients, 0);
  std::mt19937 rng(26);
  size_t acknowledged_in_cycles = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    ServeProcess serve(dir, config);
    if (cycle % 3 == 2) {
      // Killed while starting: the applier resumes the commands the last run left in doubt.
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 250));
      continue;  // ~ServeProcess: SIGKILL
    }
    auto urls = serve.WaitReady();
    ASSERT_FALSE(urls.empty()) << "cycle " << cycle;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] { SendCommands(urls[0], c, stop, ledger, sequences[c]); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    serve.Signal(SIGKILL);
    stop = true;
    for (auto& t : clients) t.join();
    std::lock_guard lock(ledger.mu);
    acknowledged_in_cycles = ledger.position_of.size();
  }

  ServeProcess serve(dir, config);
  auto urls = serve.WaitReady();
  ASSERT_FALSE(urls.empty());
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0], ClientOptions{.timeout = 10s});
  // Send every command again: an acknowledged one is acknowledged again at its position, one that
  // never was gets its position now.
  std::map<std::string, uint64_t> position_of;
  std::map<std::string, std::string> key_of;
  {
    std::lock_guard lock(ledger.mu);
    key_of = ledger.key_of;
    position_of = ledger.position_of;
  }
  for (const auto& [id, key] : key_of) {
    auto ack = CallAndWait(*client, Msg(Command(id, key, 0)));
    ASSERT_TRUE(ack.ok()) << id << ": " << ack.status().ToString();
    uint64_t position = ack->GetUint("position").value_or(0);
    if (position_of.count(id)) {
      EXPECT_EQ(position, position_of[id]) << id << " was acknowledged at another position";
    }
    position_of[id] = position;
  }
  std::optional<ApplierStatus> status;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until) {
    status = StatusOf(*client);
    if (status && status->applied >= status->head) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(status && status->applied >= status->head) << "the applier did not catch up";

  std::map<uint64_t, int> applied = ChangesByPosition(*client);
  size_t duplicates = 0, missing = 0;
  std::map<std::string, uint64_t> commands_of_key;
  for (const auto& [id, position] : position_of) {
    ++commands_of_key[key_of[id]];
    auto it = applied.find(position);
    if (it == applied.end()) {
      ++missing;
    } else if (it->second > 1) {
      duplicates += it->second - 1;
    }
  }
  size_t wrong_versions = 0;
  for (const auto& [key, count] : commands_of_key) {
    auto loaded = CallAndWait(
        *client, Msg(R"({"store":"load","kind":"entry","cqrs":"apply","id":")" + key + R"("})"));
    ASSERT_TRUE(loaded.ok()) << key << ": " << loaded.status().ToString();
    rapidjson::Document ent;
    auto text = loaded->GetObjectJson("ent").value_or("{}");
    ent.Parse(text.data(), text.size());
    if (ent["version"].GetUint64() != count) ++wrong_versions;
  }
  auto letters =
      CallAndWait(*client, Msg(R"({"cqrs":"deadletter","cmd":"list","service":"commands"})"));
  ASSERT_TRUE(letters.ok()) << letters.status().ToString();
  std::cout << "[ figures  ] " << kCycles << " kill -9 cycles, " << acknowledged_in_cycles
            << " commands acknowledged during them, " << position_of.size() << " in all, "
            << commands_of_key.size() << " keys\n";
  EXPECT_EQ(duplicates, 0u) << "commands applied more than once";
  EXPECT_EQ(missing, 0u) << "acknowledged commands never applied";
  EXPECT_EQ(wrong_versions, 0u) << "keys whose version is not their number of commands";
  EXPECT_EQ(status->dead_letters, 0u);
  std::string items(letters->GetArrayJson("items").value_or(""));
  EXPECT_EQ(items, "[]") << "dead letters, the first: " << items.substr(0, 400);
  EXPECT_GT(acknowledged_in_cycles, 0u);
}

}  // namespace
}  // namespace shardkit::services::testing
