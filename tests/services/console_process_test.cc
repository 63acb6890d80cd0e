// The web console in a real browser: a real `shardkit serve` node (shard map, six RocksDB shard
// stores, a shard router, an entry cache, a migrator) under client load splits 40-80 while
// headless Chromium (Debian's `chromium`) loads /console. The DOM must show the ranges before and
// after, the migration's phases and a non-zero cache hit ratio; the page must log no JavaScript
// error and request nothing but the node (Chromium's network log). Screenshots are written to
// $SHARDKIT_ARTIFACTS (default: the build folder's console-artifacts/). And the cluster's nodes
// in /console/state, over a real nats-server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <set>
#include <thread>

#include "cluster_node.h"
#include "shardkit/message/json.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

const char* kRanges[] = {"-40", "40-80", "80-c0", "c0-", "40-60", "60-80"};

std::string NodeConfig(const std::string& data) {
  std::string toml = fmt::format(R"(
[node]
name = "console-node"
threads = 2
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-40", "40-80", "80-c0", "c0-"]
path = "{0}/map.json"
[[service]]
name = "router"
type = "shard-router"
node_id = 1
patterns = ["store:*,kind:entry,cache:true"]
[[service]]
name = "entry-cache"
type = "cache"
patterns = ["store:*,kind:entry", 'sys:cache,cmd:stats,name:"entry-cache"']
[[service]]
name = "migrator"
type = "migrator"
dir = "{0}/migrations"
)",
                                 data);
  for (const char* range : kRanges) {
    toml += fmt::format(R"(
[[service]]
name = "store-{0}"
type = "store"
backend = "rocksdb"
path = "{1}/{0}"
shard = "{0}"
)",
                        range, data);
  }
  return toml;
}

std::string ArtifactDir() {
  const char* set = std::getenv("SHARDKIT_ARTIFACTS");
  std::string dir = set ? set : SHARDKIT_ARTIFACT_DIR;
  std::filesystem::create_directories(dir);
  return dir;
}

struct PageLoad {
  std::string dom;
  std::string log;      // Chromium's stderr: console messages are logged there
  std::string net_log;  // every URL Chromium requested
};

// Loads the console in headless Chromium for `budget_ms` of virtual time (the page polls every
// 250 ms), writing `screenshot`; returns the DOM then.
PageLoad LoadConsole(const TempDir& dir, const std::string& url, const std::string& screenshot) {
  std::string net_log = dir.File("netlog.json");
  std::string common = fmt::format(
      "chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-sync "
      "--disable-background-networking --disable-component-update --disable-default-apps "
      "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter "
      "--host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' "
      "--user-data-dir={} --window-size=1400,1500 --virtual-time-budget=4000 "
      "--enable-logging=stderr --v=0",
      dir.File("chromium-profile"));
  std::string page = url + "/console?interval_ms=250";
  auto dump = Shell(dir, fmt::format("{} --log-net-log={} --dump-dom '{}'", common, net_log, page));
  PageLoad load{dump.out, dump.err, ReadFile(net_log)};
  auto shot = Shell(dir, fmt::format("{} --screenshot={} '{}'", common, screenshot, page));
  EXPECT_EQ(shot.exit_code, 0) << shot.err;
  EXPECT_TRUE(std::filesystem::exists(screenshot)) << shot.err;
  load.log += shot.err;
  return load;
}

// The value of attribute `name` on the element with attribute `marker`, from the DOM text.
std::string Attribute(const std::string& dom, const std::string& marker, const std::string& name) {
  std::regex re("<[^>]*" + marker + "[^>]*\\b" + name + "=\"([^\"]*)\"");
  std::smatch m;
  if (std::regex_search(dom, m, re)) return m[1];
  std::regex reversed("<[^>]*\\b" + name + "=\"([^\"]*)\"[^>]*" + marker);
  return std::regex_search(dom, m, reversed) ? std::string(m[1]) : std::string();
}

// The requests the page made, from Chromium's network log: the top-level load and every request
// whose initiator is a page (the browser's own background requests, e.g. its component updater,
// have no initiator and are kept off the network by --host-resolver-rules).
std::vector<std::string> PageRequests(const std::string& net_log) {
  std::vector<std::string> urls;
  auto doc = ParseJson(net_log, "net log");
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok() || !doc->HasMember("events")) return urls;
  for (const auto& event : (*doc)["events"].GetArray()) {
    if (!event.HasMember("params") || !event["params"].IsObject()) continue;
    const auto& params = event["params"];
    if (!params.HasMember("url") || !params.HasMember("initiator"))
      continue;  // URL_REQUEST_START_JOB
    std::string initiator = params["initiator"].GetString();
    std::string type = params.HasMember("request_type") ? params["request_type"].GetString() : "";
    if (initiator != "not an origin" || type == "main frame")
      urls.push_back(params["url"].GetString());
  }
  return urls;
}

// What a page load must never show: a JavaScript error (caught by the page, or logged as a console
// message by Chromium, CSP violations included), or a request to anything but the node.
void ExpectCleanLoad(const PageLoad& load, const std::string& url) {
  EXPECT_THAT(load.dom, HasSubstr("id=\"js-errors\" class=\"errors\" hidden=\"\""))
      << "the page caught a JavaScript error:\n"
      << load.dom;
  std::regex console_line(R"(:CONSOLE[^\]]*\][^\n]*)");
  for (std::sregex_iterator it(load.log.begin(), load.log.end(), console_line), end; it != end;
       ++it) {
    ADD_FAILURE() << "Chromium logged a console message: " << it->str();
  }
  std::vector<std::string> urls = PageRequests(load.net_log);
  EXPECT_GT(urls.size(), 4u) << "the network log holds the page, its CSS, JS and polls";
  for (const std::string& u : urls) {
    EXPECT_EQ(u.rfind(url + "/", 0), 0u) << "the page requested " << u << ", not the node";
  }
}

TEST(ConsoleProcess, ChromiumShowsASplitUnderLoadWithNoErrorAndNoOutsideRequest) {
  bool chromium = std::system("command -v chromium > /dev/null 2>&1") == 0;
  SHARDKIT_REQUIRE_COMPONENT(chromium, "chromium is not installed", "chromium");
  TempDir dir;
  std::string data = dir.path();
  ServeProcess node(dir, dir.Write("node.toml", NodeConfig(data)));
  auto urls = node.WaitReady();
  ASSERT_EQ(urls.size(), 1u);
  const std::string url = urls[0];
  IoRuntime runtime(2);
  ClientOptions options;
  options.timeout = std::chrono::seconds(60);
  auto admin = Client(runtime, url, options);

  // Load: saves of new entities and loads of a hot set (cache hits), until stopped.
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(
        CallAndWait(*admin,
                    Msg(fmt::format(
                        R"({{"store":"save","kind":"entry","ent":{{"id":"hot{}","v":1}}}})", i)))
            .ok());
  }
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      auto client = Client(runtime, url);
      for (int i = 0; !stop; ++i) {
        std::string json =
            i % 2
                ? fmt::format(R"({{"store":"load","kind":"entry","id":"hot{}"}})",
                              (i * 7 + t) % 200)
                : fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"c{}-{}","v":{}}}}})",
                              t, i, i);
        if (!CallAndWait(*client, Msg(json)).ok()) ++failed;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  std::string artifacts = ArtifactDir();
  PageLoad before = LoadConsole(dir, url, artifacts + "/console-before.png");
  ExpectCleanLoad(before, url);
  EXPECT_EQ(Attribute(before.dom, "data-map=\"main\"", "data-ranges"), "-40 40-80 80-c0 c0-")
      << before.dom;
  EXPECT_EQ(Attribute(before.dom, "data-map=\"main\"", "data-epoch"), "1");
  EXPECT_GT(std::stod("0" + Attribute(before.dom, "data-cache=\"entry-cache\"", "data-hit-ratio")),
            0.0)
      << before.dom;

  // The split, under the load.
  auto call = [&](const std::string& json) {
    auto reply = CallAndWait(*admin, Msg(json));
    EXPECT_TRUE(reply.ok()) << json << ": " << reply.status().ToString();
    return reply;
  };
  ASSERT_TRUE(
      call(R"({"migrate":"start","id":"m1","sources":["40-80"],"targets":["40-60","60-80"]})")
          .ok());
  for (int i = 0; i < 600; ++i) {
    auto status = call(R"({"migrate":"status","id":"m1"})");
    if (!status.ok() || status->GetBool("copying") == std::optional<bool>(false)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(call(R"({"migrate":"cutover","id":"m1"})").ok());
  ASSERT_TRUE(call(R"({"migrate":"complete","id":"m1"})").ok());

  PageLoad after = LoadConsole(dir, url, artifacts + "/console-after.png");
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failed.load(), 0) << "client requests failed during the split";
  ExpectCleanLoad(after, url);
  EXPECT_EQ(Attribute(after.dom, "data-map=\"main\"", "data-ranges"), "-40 40-60 60-80 80-c0 c0-")
      << after.dom;
  EXPECT_EQ(Attribute(after.dom, "data-map=\"main\"", "data-epoch"), "2");
  EXPECT_EQ(Attribute(after.dom, "class=\"migration\"", "data-phase"), "completed") << after.dom;
  std::regex phase("<span class=\"phase[^\"]*\"[^>]*>([a-z_]+)</span>");
  std::vector<std::string> phases;
  for (std::sregex_iterator it(after.dom.begin(), after.dom.end(), phase), end; it != end; ++it)
    phases.push_back((*it)[1]);
  EXPECT_THAT(phases,
              ::testing::ElementsAre("created", "copied", "cutover", "cutover_done", "completed"))
      << after.dom;
  EXPECT_GT(std::stod("0" + Attribute(after.dom, "data-cache=\"entry-cache\"", "data-hit-ratio")),
            0.0);
}

// In cluster mode /console/state lists this node and every node of the registry; a node killed
// leaves the list once its registry key is no longer refreshed.
TEST(ConsoleProcess, InClusterModeTheStateListsEveryLiveNode) {
  NatsServer nats;
  SHARDKIT_REQUIRE_COMPONENT(nats.ok(), nats.problem(), "nats-server");
  bool curl = std::system("command -v curl > /dev/null 2>&1") == 0;
  SHARDKIT_REQUIRE_COMPONENT(curl, "curl is not installed", "curl");
  ClusterNode echo(nats.url(), "echo-1", EchoService("echo-1"));
  ClusterNode router(nats.url(), "router", "[[listener]]\nurl = \"http://127.0.0.1:0\"\n");
  ASSERT_TRUE(Eventually([&] { return RoutesToCluster(router, "role:echo", 1); }));
  std::istringstream ready(ReadFile(router.dir.File("ready")));
  std::string tcp, http;
  std::getline(ready, tcp);
  std::getline(ready, http);
  ASSERT_EQ(http.rfind("http://", 0), 0u) << http;
  auto cluster = [&] {
    auto run = Shell(router.dir, "curl -s " + http + "/console/state");
    auto state = ParseJson(run.out, "state");
    EXPECT_TRUE(state.ok()) << run.out;
    return state.ok() ? ToJsonText((*state)["cluster"]) : std::string();
  };
  std::string both = cluster();
  EXPECT_THAT(both, HasSubstr(R"({"node":"router","self":true,"connected":true})"));
  EXPECT_THAT(both, HasSubstr(R"({"node":"echo-1","registered":true,"patterns":1})"));
  echo.process->Signal(SIGKILL);
  EXPECT_TRUE(Eventually([&] { return cluster().find("echo-1") == std::string::npos; }, 10s))
      << cluster();
  EXPECT_THAT(cluster(), HasSubstr(R"({"node":"router","self":true,"connected":true})"));
}

}  // namespace
}  // namespace shardkit::services::testing
