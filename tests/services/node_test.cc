// Nodes in this process: routing to services and remote nodes, overload, deadlines across hops,
// reload, security (tokens, external listeners) and bad input on the wire.
#include <gmock/gmock.h>

#include <atomic>
#include <thread>

#include "shardkit/message/json.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kEchoNode[] = R"(
[node]
name = "n"
request_timeout_ms = 5000
[[listener]]
url = "tcp://127.0.0.1:0"
read_timeout_ms = 300
[[listener]]
url = "http://127.0.0.1:0"
read_timeout_ms = 300
[[service]]
name = "echo"
type = "echo"
max_in_flight = 2
)";

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = StartNode(kEchoNode);
    ASSERT_NE(node_, nullptr);
    tcp_ = node_->listener_urls().at(0);
    http_ = node_->listener_urls().at(1);
  }
  void TearDown() override {
    if (node_) node_->Stop(std::chrono::milliseconds(500));
  }
  Result<Message> Call(const std::string& url, Message m, ClientOptions options = {}) {
    auto client = Client(runtime_, url, options);
    return CallAndWait(*client, std::move(m));
  }

  IoRuntime runtime_{1};
  std::unique_ptr<Node> node_;
  std::string tcp_, http_;
};

TEST_F(NodeTest, PastMaxInFlightTheServiceAnswersOverloadedAtOnce) {
  auto client = Client(runtime_, tcp_);
  Replies replies;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    Context context(nullptr, nullptr, {});
    client->Handle(Msg(R"({"role":"echo","delay_ms":400})"), context, replies.Collect());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto results = replies.Wait();
  int ok = 0, overloaded = 0;
  for (auto& r : results) {
    if (r.ok()) ++ok;
    if (!r.ok() && r.status().code() == Code::kOverloaded) ++overloaded;
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(overloaded, 8);
  (void)start;
}

TEST_F(NodeTest, OverloadedRepliesDoNotWaitForTheBusyOnes) {
  auto client = Client(runtime_, tcp_);
  Replies busy;
  for (int i = 0; i < 2; ++i) {
    Context context(nullptr, nullptr, {});
    client->Handle(Msg(R"({"role":"echo","delay_ms":1500})"), context, busy.Collect());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  auto reply = CallAndWait(*client, Msg(R"({"role":"echo"})"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kOverloaded);
  EXPECT_THAT(reply.status().message(), HasSubstr("service 'echo'"));
  busy.Wait();
}

TEST_F(NodeTest, ExplainShowsWhereAMessageGoes) {
  auto reply = Call(tcp_, Msg(R"({"sys":"config","cmd":"explain","msg":{"role":"echo","x":1}})"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetString("pattern"), "role:echo");
  EXPECT_EQ(reply->GetString("to"), "service echo (echo)");
  EXPECT_THAT(std::string(*reply->GetString("summary")), HasSubstr("role:echo"));
}

TEST_F(NodeTest, ReloadAddingARouteLosesNoRequestSentMeanwhile) {
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::string first_failure;
  std::thread sender([&] {
    IoRuntime runtime(1);
    auto client = Client(runtime, tcp_);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!stop && std::chrono::steady_clock::now() < until) {
      auto reply = CallAndWait(*client, Msg(R"({"role":"echo"})"));
      ++sent;
      if (!reply.ok() && failed++ == 0) first_failure = reply.status().ToString();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < 5; ++i) {
    auto next = ParseNodeConfig(std::string(kEchoNode) +
                                    "[[service]]\nname = \"kv\"\ntype = \"kv\"\npreload = 3\n" +
                                    (i % 2 ? "" : "[[route]]\npattern = \"kind:x\"\nto = \"kv\"\n"),
                                "next.toml");
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    ASSERT_TRUE(node_->Reload(std::move(next).value()).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  stop = true;
  sender.join();
  EXPECT_GT(sent.load(), 10);
  EXPECT_EQ(failed.load(), 0) << first_failure;
  auto loaded = Call(tcp_, Msg(R"({"store":"load","kind":"entry","id":"1"})"));
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
}

TEST_F(NodeTest, BadReloadIsRefusedAndTheOldTableKeepsServing) {
  auto bad = ParseNodeConfig(
      std::string(kEchoNode) + "[[service]]\nname = \"x\"\ntype = \"kv\"\nvalue_bytes = -1\n",
      "bad.toml");
  ASSERT_TRUE(bad.ok());
  Status refused = node_->Reload(std::move(bad).value());
  EXPECT_EQ(refused.code(), Code::kInvalid);
  EXPECT_THAT(refused.message(), HasSubstr("bad.toml: service 'x' (kv): key 'value_bytes'"));
  EXPECT_TRUE(Call(tcp_, Msg(R"({"role":"echo"})")).ok());
  EXPECT_FALSE(Call(tcp_, Msg(R"({"store":"load","id":1})")).ok());
}

TEST_F(NodeTest, ReloadCannotChangeListeners) {
  auto next = ParseNodeConfig("[[listener]]\nurl = \"tcp://127.0.0.1:0\"\n", "next.toml");
  ASSERT_TRUE(next.ok());
  EXPECT_THAT(node_->Reload(std::move(next).value()).message(),
              HasSubstr("listeners cannot change"));
}

TEST_F(NodeTest, MetricsAndHealthAnswerOverHttp) {
  ASSERT_TRUE(Call(tcp_, Msg(R"({"role":"echo"})")).ok());
  RawSocket socket(PortOf(http_));
  ASSERT_TRUE(socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string metrics = socket.ReadHttpResponse();
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(metrics,
              HasSubstr("shardkit_messages_total{pattern=\"role:echo\",outcome=\"ok\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("shardkit_request_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_THAT(metrics, HasSubstr("shardkit_in_flight"));
  EXPECT_THAT(metrics, HasSubstr("shardkit_queue_depth{service=\"echo\"} 0"));
  ASSERT_TRUE(socket.Send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(socket.ReadHttpResponse(), HasSubstr("\"status\":\"ok\""));
}

TEST_F(NodeTest, StatsMessageReportsCounts) {
  ASSERT_TRUE(Call(tcp_, Msg(R"({"role":"echo"})")).ok());
  auto stats = Call(tcp_, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok());
  EXPECT_THAT(std::string(*stats->GetObjectJson("routes")), HasSubstr("\"role:echo\":{\"ok\":1}"));
}

// Names are user text: a service or node name with quotes and control characters still gives
// valid JSON in sys:stats, the route list and /health, with the name intact.
TEST(NodeJsonTest, NamesWithQuotesAndControlCharactersGiveValidJson) {
  auto node = StartNode(R"(
[node]
name = "n\"1\u0001"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "e\"c\\h\to\u0002"
type = "echo"
)");
  ASSERT_NE(node, nullptr);
  const std::string service = "e\"c\\h\to\x02";
  IoRuntime runtime(1);
  auto client = Client(runtime, node->listener_urls().at(0));
  auto stats = CallAndWait(*client, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  ASSERT_TRUE(stats->GetObjectJson("queues")) << ToJson(*stats);
  auto queues = ParseJson(*stats->GetObjectJson("queues"), "queues");
  ASSERT_TRUE(queues.ok()) << queues.status().ToString();
  ASSERT_TRUE(queues->HasMember(service.c_str())) << *stats->GetObjectJson("queues");
  EXPECT_EQ((*queues)[service.c_str()].GetInt(), 0);

  auto routes = CallAndWait(*client, Msg(R"({"sys":"config","cmd":"routes"})"));
  ASSERT_TRUE(routes.ok()) << routes.status().ToString();
  EXPECT_EQ(routes->GetString("node"), std::optional<std::string_view>("n\"1\x01"));
  auto list = ParseJson(*routes->GetArrayJson("routes"), "routes");
  ASSERT_TRUE(list.ok()) << list.status().ToString();

  RawSocket socket(PortOf(node->listener_urls().at(1)));
  ASSERT_TRUE(socket.Send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string health = socket.ReadHttpResponse();
  auto body = ParseJson(health.substr(health.find("\r\n\r\n") + 4), "health");
  ASSERT_TRUE(body.ok()) << health;
  EXPECT_EQ(std::string((*body)["node"].GetString()), "n\"1\x01");
  node->Stop(std::chrono::milliseconds(500));
}

// --- Hops
// -----------------------------------------------------------------------------------------

TEST(RemoteRouteTest, ForwardsKeepingTheTraceAndTimesOutAtTheRouteTimeout) {
  auto back = StartNode(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "echo"
type = "echo"
)");
  ASSERT_NE(back, nullptr);
  auto front = StartNode(fmt::format(R"(
[[listener]]
url = "http://127.0.0.1:0"
[[route]]
pattern = "role:echo"
to = "{}"
timeout_ms = 300
)",
                                     back->listener_urls()[0]));
  ASSERT_NE(front, nullptr);
  IoRuntime runtime(1);
  auto client = Client(runtime, front->listener_urls()[0]);
  auto reply =
      CallAndWait(*client, Msg(R"({"role":"echo","v":7,"meta$":{"id":"r1","trace":"t-9"}})"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetInt("v"), 7);
  EXPECT_EQ(reply->meta().id, "r1");

  auto start = std::chrono::steady_clock::now();
  auto slow = CallAndWait(*client, Msg(R"({"role":"echo","delay_ms":2000})"));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), Code::kTimeout) << slow.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  front->Stop(std::chrono::milliseconds(100));
  back->Stop(std::chrono::milliseconds(100));
}

// --- Security
// -------------------------------------------------------------------------------------

TEST(SecurityTest, ListenersWithATokenRefuseCallersWithout) {
  auto node = StartNode(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
token = "s3cret"
[[listener]]
url = "http://127.0.0.1:0"
token = "s3cret"
[[service]]
name = "echo"
type = "echo"
)");
  ASSERT_NE(node, nullptr);
  IoRuntime runtime(1);
  for (const std::string& url : node->listener_urls()) {
    for (std::string token : {"", "wrong"}) {
      auto client = Client(runtime, url, ClientOptions{.token = token});
      auto refused = CallAndWait(*client, Msg(R"({"role":"echo"})"));
      ASSERT_FALSE(refused.ok()) << url;
      EXPECT_EQ(refused.status().code(), Code::kInvalid) << url;
      EXPECT_THAT(refused.status().message(), HasSubstr("unauthorized")) << url;
    }
    auto client = Client(runtime, url, ClientOptions{.token = "s3cret"});
    auto reply = CallAndWait(*client, Msg(R"({"role":"echo"})"));
    EXPECT_TRUE(reply.ok()) << url << ": " << reply.status().ToString();
  }
  node->Stop(std::chrono::milliseconds(100));
}

TEST(SecurityTest, ExternalListenersStripInternalPropertiesAndRefuseSys) {
  auto node = StartNode(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
external = true
[[service]]
name = "echo"
type = "echo"
)");
  ASSERT_NE(node, nullptr);
  IoRuntime runtime(1);
  auto client = Client(runtime, node->listener_urls()[0]);
  auto reply = CallAndWait(
      *client,
      Msg(R"({"role":"echo","shard":3,"cache":false,"x":1,"meta$":{"trace":"keep-me","hops":30}})"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_FALSE(reply->Has("shard"));
  EXPECT_FALSE(reply->Has("cache"));
  EXPECT_EQ(reply->GetInt("x"), 1);
  auto sys = CallAndWait(*client, Msg(R"({"sys":"config","cmd":"routes"})"));
  ASSERT_FALSE(sys.ok());
  EXPECT_EQ(sys.status().code(), Code::kInvalid);
  node->Stop(std::chrono::milliseconds(100));
}

// --- Bad input
// ------------------------------------------------------------------------------------

TEST_F(NodeTest, MalformedFrameIsAnsweredAndTheConnectionCarriesOn) {
  RawSocket socket(PortOf(tcp_));
  ASSERT_TRUE(socket.Send(Frame("{\"role\":")));
  auto error = socket.ReadFrame();
  ASSERT_TRUE(error.ok()) << error.status().ToString();
  EXPECT_EQ(FromWire(std::move(error).value()).status().code(), Code::kInvalid);
  ASSERT_TRUE(socket.Send(Frame(R"({"role":"echo","meta$":{"id":"after"}})")));
  auto reply = socket.ReadFrame();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->meta().id, "after");
}

TEST_F(NodeTest, HugeLengthPrefixIsRefusedAndTheConnectionClosed) {
  RawSocket socket(PortOf(tcp_));
  ASSERT_TRUE(socket.Send(std::string("\x40\x00\x00\x00", 4)));  // 1 GiB
  auto error = socket.ReadFrame();
  ASSERT_TRUE(error.ok()) << error.status().ToString();
  EXPECT_THAT(FromWire(std::move(error).value()).status().message(),
              HasSubstr("exceeds the limit"));
  EXPECT_TRUE(socket.ClosedWithin(std::chrono::seconds(2)));
  EXPECT_TRUE(Call(tcp_, Msg(R"({"role":"echo"})")).ok());
}

TEST_F(NodeTest, GarbageAndTruncatedFramesDoNotHarmOtherConnections) {
  auto client = Client(runtime_, tcp_);
  ASSERT_TRUE(CallAndWait(*client, Msg(R"({"role":"echo"})")).ok());
  {
    RawSocket garbage(PortOf(tcp_));
    std::string bytes;
    for (int i = 0; i < 4096; ++i) bytes += static_cast<char>((i * 7919) & 0xff);
    garbage.Send(bytes);
    RawSocket truncated(PortOf(tcp_));
    truncated.Send(Frame(R"({"role":"echo","x":"0123456789"})").substr(0, 20));
  }  // both close mid-stream
  RawSocket stalled(PortOf(tcp_));
  ASSERT_TRUE(stalled.Send(Frame(R"({"role":"echo"})").substr(0, 10)));
  EXPECT_TRUE(stalled.ClosedWithin(std::chrono::seconds(3)));  // read_timeout_ms = 300
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(CallAndWait(*client, Msg(R"({"role":"echo"})")).ok());
}

TEST_F(NodeTest, SlowLorisHttpClientIsDroppedWhileOthersAreServed) {
  RawSocket slow(PortOf(http_));
  ASSERT_TRUE(slow.Send("POST /act HTTP/1.1\r\nHost: x\r\nContent-Len"));
  auto client = Client(runtime_, http_);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(CallAndWait(*client, Msg(R"({"role":"echo"})")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  slow.Send("gth: 5\r\n");
  EXPECT_TRUE(slow.ClosedWithin(std::chrono::seconds(3)));
}

TEST_F(NodeTest, HttpErrorsUseStatusCodesAndTheErrorObject) {
  RawSocket socket(PortOf(http_));
  std::string body = R"({"role":"nobody"})";
  ASSERT_TRUE(socket.Send(
      fmt::format("POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nseneca-id: s1\r\n"
                  "seneca-origin: o1\r\n\r\n{}",
                  body.size(), body)));
  std::string response = socket.ReadHttpResponse();
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 503"));  // no route: nothing serves it, not "no entity"
  EXPECT_THAT(response, HasSubstr("seneca-kind: res"));
  EXPECT_THAT(response, HasSubstr("seneca-id: s1"));
  EXPECT_THAT(response, HasSubstr("seneca-origin: o1"));
  EXPECT_THAT(response, HasSubstr("{\"error$\":{\"code\":\"no_route\""));
  ASSERT_TRUE(socket.Send("POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}"));
  EXPECT_THAT(socket.ReadHttpResponse(), HasSubstr("HTTP/1.1 400"));
}

// Found by fuzz/http_request_fuzz: a seneca-id or Idempotency-Key header that is not UTF-8 became
// meta$ text, so the reply (and any message the node passed on) was not valid JSON.
TEST_F(NodeTest, HttpHeadersThatAreNotUtf8AreRefusedNamingTheHeader) {
  RawSocket socket(PortOf(http_));
  const std::string body = R"({"role":"echo"})";
  for (const std::string header : {"seneca-id", "Idempotency-Key"}) {
    ASSERT_TRUE(socket.Send(
        fmt::format("POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}: a\xec/1\r\n\r\n{}",
                    body.size(), header, body)));
    const std::string response = socket.ReadHttpResponse();
    EXPECT_THAT(response, HasSubstr("HTTP/1.1 400"));
    EXPECT_THAT(response, HasSubstr(header + ": the header's value is not valid UTF-8"));
    const size_t end = response.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos);
    EXPECT_TRUE(ParseMessage(response.substr(end + 4)).ok()) << response;
  }
}

// Found by fuzz/codec_fuzz: strings the codec let through (a raw control character 0x1a-0x1f,
// the escape of a lone surrogate) came back from the echo service as frames that are not JSON.
// They are refused, and the connection carries on.
TEST_F(NodeTest, StringsThatWouldNotPrintAsJsonAreRefusedOverTcp) {
  RawSocket socket(PortOf(tcp_));
  const std::string run(40, 'S');
  for (const std::string& text : {R"({"role":"echo","x":{"k\n)" + run + "\x1a\":1}}",
                                  std::string(R"({"role":"echo","x":"\udc00"})")}) {
    ASSERT_TRUE(socket.Send(Frame(text)));
    auto reply = socket.ReadFrame();
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    Result<Message> answer = FromWire(std::move(reply).value());
    ASSERT_FALSE(answer.ok()) << text << " was accepted";
    EXPECT_EQ(answer.status().code(), Code::kInvalid) << text;
  }
  ASSERT_TRUE(socket.Send(Frame(R"({"role":"echo","meta$":{"id":"after"}})")));
  auto reply = socket.ReadFrame();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->meta().id, "after");
}

}  // namespace
}  // namespace shardkit::services::testing
