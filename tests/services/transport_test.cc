// One transport suite, run over TCP, HTTP, TLS (tls:// and https://), in-process and NATS:
// whatever carries a message, a service sees the same requests and a caller the same replies,
// errors and timeouts. The NATS runs use one real nats-server started by the suite
// (nats_server.h); the TLS runs certificates made when the suite starts
// (shardkit/testing/test_certs.h).
#include <atomic>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <nats/nats.h>

#include "nats_link.h"
#include "nats_server.h"
#include "nkeys.h"
#include "shardkit/testing/test_certs.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::shardkit::testing::MakeTestCerts;
using ::shardkit::testing::TestCerts;

// One server for every NATS test of this process (started on first use, killed at exit).
NatsServer& SharedNatsServer() {
  static auto* server = new NatsServer();
  static bool cleanup = (std::atexit([] { delete server; }), true);
  (void)cleanup;
  return *server;
}

// The certificates of every TLS test of this process.
const TestCerts& SharedCerts() {
  static TempDir dir;  // removed at exit
  static TestCerts certs = MakeTestCerts(dir.path());
  return certs;
}

struct Transport {
  Scheme scheme;
  bool tls = false;
};
std::string Name(const Transport& transport) {
  switch (transport.scheme) {
    case Scheme::kTcp:
      return transport.tls ? "Tls" : "Tcp";
    case Scheme::kHttp:
      return transport.tls ? "Https" : "Http";
    case Scheme::kInproc:
      return "Inproc";
    case Scheme::kNats:
      return "Nats";
  }
  return "Unknown";
}
void PrintTo(const Transport& transport, std::ostream* out) { *out << Name(transport); }

std::string Listen(Transport transport, uint16_t port) {
  static std::atomic<int> next{0};
  switch (transport.scheme) {
    case Scheme::kTcp:
      return fmt::format("{}://127.0.0.1:{}", transport.tls ? "tls" : "tcp", port);
    case Scheme::kHttp:
      return fmt::format("{}://127.0.0.1:{}", transport.tls ? "https" : "http", port);
    case Scheme::kInproc:
      return fmt::format("inproc://transport-{}", next++);
    case Scheme::kNats:
      return SharedNatsServer().url();
  }
  return {};
}

// An echo node listening on `url` (tls:// and https:// with the shared server certificate).
std::string EchoNodeToml(const std::string& url) {
  std::string tls;
  if (ParseEndpoint(url)->tls)
    tls = fmt::format("tls_cert_file = \"{}\"\ntls_key_file = \"{}\"", SharedCerts().server_cert,
                      SharedCerts().server_key);
  return fmt::format(R"(
[node]
name = "echo-node"
[[listener]]
url = "{}"
{}
[[service]]
name = "echo"
type = "echo"
max_in_flight = 100000
)",
                     url, tls);
}

class TransportTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    if (GetParam().scheme == Scheme::kNats)
      SHARDKIT_REQUIRE_COMPONENT(SharedNatsServer().ok(), SharedNatsServer().problem(),
                                 "nats-server");
    node_ = StartNode(EchoNodeToml(Listen(GetParam(), 0)));
    ASSERT_NE(node_, nullptr);
    url_ = node_->listener_urls().at(0);
  }
  void TearDown() override {
    client_.reset();
    if (node_) node_->Stop(std::chrono::milliseconds(500));
  }
  Handler& ClientWith(ClientOptions options) {
    if (GetParam().tls) options.tls_ca_file = SharedCerts().ca;
    client_ = Client(runtime_, url_, options);
    return *client_;
  }
  Handler& DefaultClient() {
    if (!client_) ClientWith({});
    return *client_;
  }

  IoRuntime runtime_{2};
  std::unique_ptr<Node> node_;
  std::string url_;
  std::shared_ptr<Handler> client_;
};

TEST_P(TransportTest, RequestGetsItsReplyWithTheRequestId) {
  Message request =
      Msg(R"({"role":"echo","x":1,"name":"ada","meta$":{"id":"req-1","trace":"tr-1"}})");
  auto reply = CallAndWait(DefaultClient(), std::move(request));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetInt("x"), 1);
  EXPECT_EQ(reply->GetString("name"), "ada");
  EXPECT_EQ(reply->GetString("served_by"), "echo");
  EXPECT_EQ(reply->meta().id, "req-1");
}

TEST_P(TransportTest, ThousandsOfConcurrentRequestsAreAllAnswered) {
  Handler& client =
      ClientWith(ClientOptions{.timeout = std::chrono::seconds(15), .connections = 4});
  Replies replies;
  constexpr int kRequests = 3000;
  for (int i = 0; i < kRequests; ++i) {
    Message m;
    m.SetString("role", "echo").SetInt("i", i);
    Context context(nullptr, nullptr, {});
    client.Handle(std::move(m), context, replies.Collect());
  }
  auto results = replies.Wait();
  ASSERT_EQ(results.size(), size_t{kRequests});
  std::vector<bool> seen(kRequests, false);
  for (auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    seen[static_cast<size_t>(*r->GetInt("i"))] = true;
  }
  for (bool s : seen) EXPECT_TRUE(s);
}

TEST_P(TransportTest, LargeMessageRoundTrips) {
  std::string big(2 * 1024 * 1024, 'z');
  Message m;
  m.SetString("role", "echo").SetString("blob", big);
  auto reply = CallAndWait(DefaultClient(), std::move(m));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetString("blob")->size(), big.size());
}

TEST_P(TransportTest, MessageOverTheSizeLimitIsRefusedInvalid) {
  Message m;
  m.SetString("role", "echo").SetString("blob", std::string(5 * 1024 * 1024, 'z'));
  auto reply = CallAndWait(DefaultClient(), std::move(m));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid) << reply.status().ToString();
  // The connection stays usable.
  EXPECT_TRUE(CallAndWait(DefaultClient(), Msg(R"({"role":"echo"})")).ok());
}

TEST_P(TransportTest, ErrorRepliesKeepTheirCodeAndMessage) {
  for (std::string code : {"not_found", "conflict", "overloaded", "internal"}) {
    auto reply =
        CallAndWait(DefaultClient(), Msg(fmt::format(R"({{"role":"echo","fail":"{}"}})", code)));
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(CodeName(reply.status().code()), code);
    EXPECT_EQ(reply.status().message(), "echo was asked to fail with " + code);
  }
}

TEST_P(TransportTest, UnroutedMessageIsNoRouteNotNotFound) {
  auto reply = CallAndWait(DefaultClient(), Msg(R"({"role":"nobody"})"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kNoRoute);
}

TEST_P(TransportTest, SlowReplyTimesOutAtTheClientTimeout) {
  Handler& client = ClientWith(ClientOptions{.timeout = std::chrono::milliseconds(200)});
  auto start = std::chrono::steady_clock::now();
  auto reply = CallAndWait(client, Msg(R"({"role":"echo","delay_ms":3000})"));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kTimeout) << reply.status().ToString();
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST_P(TransportTest, DeadlineShorterThanTheTimeoutWins) {
  Message m = Msg(R"({"role":"echo","delay_ms":3000})");
  m.meta().deadline = SystemClock::Default().NowMs() + 150;
  auto start = std::chrono::steady_clock::now();
  auto reply = CallAndWait(DefaultClient(), std::move(m));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

TEST_P(TransportTest, ClientRecoversWhenTheServerRestarts) {
  ASSERT_TRUE(CallAndWait(DefaultClient(), Msg(R"({"role":"echo"})")).ok());
  node_->Stop(std::chrono::milliseconds(500));
  node_.reset();
  auto down = CallAndWait(DefaultClient(), Msg(R"({"role":"echo"})"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable) << down.status().ToString();

  node_ = StartNode(EchoNodeToml(url_));  // the same port (or inproc name)
  ASSERT_NE(node_, nullptr);
  auto again = CallAndWait(DefaultClient(), Msg(R"({"role":"echo"})"));
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

// An echo node listening on the shared NATS server.
class NatsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SHARDKIT_REQUIRE_COMPONENT(SharedNatsServer().ok(), SharedNatsServer().problem(),
                               "nats-server");
    node_ = StartNode(EchoNodeToml(SharedNatsServer().url()));
    ASSERT_NE(node_, nullptr);
  }
  void TearDown() override {
    if (node_) node_->Stop(std::chrono::milliseconds(500));
  }
  std::unique_ptr<Node> node_;
};

// A request's timeout is a timer set for its own deadline: one sent after a request with a later
// deadline still times out at its own, not at the other's (nor at a periodic tick).
TEST_F(NatsTransportTest, AShortTimeoutAfterALongOneEndsAtItsOwnDeadline) {
  IoRuntime runtime(1);
  auto slow = Client(runtime, SharedNatsServer().url(),
                     ClientOptions{.timeout = std::chrono::milliseconds(4000)});
  auto fast = Client(runtime, SharedNatsServer().url(),
                     ClientOptions{.timeout = std::chrono::milliseconds(300)});
  Replies long_reply;
  Message first = Msg(R"({"role":"echo","delay_ms":2000})");
  Context context(nullptr, nullptr, first.meta());
  slow->Handle(std::move(first), context, long_reply.Collect());
  auto start = std::chrono::steady_clock::now();
  auto reply = CallAndWait(*fast, Msg(R"({"role":"echo","delay_ms":3000})"));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kTimeout) << reply.status().ToString();
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  // The long one is answered, not timed out by the short one's timer.
  auto answers = long_reply.Wait(std::chrono::seconds(5));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].ok()) << answers[0].status().ToString();
}

// shardkit clients send requests with a reply subject ending in `.sk` and read the answer on
// `.r` (docs/cluster.md); any other NATS client gets its answer on its own reply subject.
TEST_F(NatsTransportTest, APlainNatsRequestIsAnsweredOnItsOwnReplySubject) {
  natsConnection* connection = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&connection, SharedNatsServer().url().c_str()), NATS_OK);
  natsMsg* reply = nullptr;
  natsStatus status =
      natsConnection_RequestString(&reply, connection, "shardkit.node",
                                   R"({"role":"echo","x":7,"meta$":{"id":"plain-1"}})", 5'000);
  ASSERT_EQ(status, NATS_OK) << natsStatus_GetText(status);
  std::string body(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  natsConnection_Destroy(connection);
  auto answer = ParseMessage(body);
  ASSERT_TRUE(answer.ok()) << body;
  EXPECT_EQ(answer->GetInt("x"), 7) << body;
  EXPECT_EQ(answer->meta().id, "plain-1") << body;
}

// Requests a shardkit NATS client sends in one turn of its I/O thread travel as one batch
// (nats_link.h); a listener serves each item on its own: a bad item gets its own error, the good
// ones their answers, and a batch whose framing breaks is served up to the break.
TEST_F(NatsTransportTest, EachItemOfABatchIsAnsweredOnItsOwn) {
  natsConnection* connection = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&connection, SharedNatsServer().url().c_str()), NATS_OK);
  natsSubscription* answers = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&answers, connection, "_INBOX.batchtest.*.r"), NATS_OK);
  std::string batch(kBatchMagic);
  AppendBatchItem(batch, 1, R"({"role":"echo","i":1})");
  AppendBatchItem(batch, 2, R"({"role":"echo","i":)");  // not JSON
  AppendBatchItem(batch, 3, R"({"role":"echo","i":3})");
  batch += "9 999\n{}";  // longer than what is left: the framing breaks here
  ASSERT_EQ(natsConnection_PublishRequest(connection, "shardkit.node", "_INBOX.batchtest.b7.sk",
                                          batch.data(), static_cast<int>(batch.size())),
            NATS_OK);
  std::map<uint64_t, std::string> got;  // item -> answer
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < 3 && std::chrono::steady_clock::now() < until) {
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, answers, 200) != NATS_OK) continue;
    std::string subject = natsMsg_GetSubject(msg);
    std::string data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
    if (subject == "_INBOX.batchtest.a.r") {
      std::vector<BatchItem> items;
      ASSERT_TRUE(ParseBatch(data, items).ok()) << data;
      for (const BatchItem& item : items) got[item.n] = std::string(item.body);
    } else {
      std::string n = subject.substr(std::string("_INBOX.batchtest.").size());
      got[std::stoull(n.substr(0, n.find('.')))] = data;
    }
  }
  // Nothing for the item past the break.
  natsMsg* extra = nullptr;
  EXPECT_NE(natsSubscription_NextMsg(&extra, answers, 300), NATS_OK);
  if (extra != nullptr) natsMsg_Destroy(extra);
  natsSubscription_Destroy(answers);
  natsConnection_Destroy(connection);
  ASSERT_EQ(got.size(), 3u);
  for (uint64_t n : {1, 3}) {
    auto answer = ParseMessage(got[n]);
    ASSERT_TRUE(answer.ok()) << got[n];
    EXPECT_EQ(answer->GetInt("i"), static_cast<int64_t>(n)) << got[n];
  }
  auto bad = ParseMessage(got[2]);
  ASSERT_TRUE(bad.ok()) << got[2];
  Status status = FromWire(std::move(bad).value()).status();
  EXPECT_EQ(status.code(), Code::kInvalid) << got[2];
}

// sys:stats reports the process's NATS links and how much went out in batches.
TEST_F(NatsTransportTest, StatsCountTheBatchesOfABurst) {
  IoRuntime runtime(1);
  auto client = Client(runtime, SharedNatsServer().url());
  Replies replies;
  for (int i = 0; i < 500; ++i) {
    Message m;
    m.SetString("role", "echo").SetInt("i", i);
    Context context(nullptr, nullptr, {});
    client->Handle(std::move(m), context, replies.Collect());
  }
  for (auto& r : replies.Wait()) ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto stats = CallAndWait(*client, Msg(R"({"sys":"stats"})"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  auto nats = ParseMessage(std::string(stats->GetObjectJson("nats").value_or("{}")));
  ASSERT_TRUE(nats.ok());
  uint64_t batches = nats->GetUint("batches").value_or(0);
  EXPECT_GE(nats->GetUint("links").value_or(0), 2u);  // the listener's and the client's
  EXPECT_GT(batches, 0u) << "500 requests sent at once went out one by one";
  EXPECT_GE(nats->GetUint("batched_items").value_or(0), 2 * batches);
}

// A NATS server that requires a user and password: the credentials go in the URL; wrong ones are a
// clear error at start that never shows the password.
TEST(NatsAuthTest, CredentialsInTheUrlAreSentAndAWrongPasswordIsAClearError) {
  NatsServer server("127.0.0.1", {}, R"(authorization { user: "ada", password: "s3cret" })");
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  std::string url = fmt::format("nats://ada:s3cret@127.0.0.1:{}", server.port());
  auto node = StartNode(EchoNodeToml(url));
  ASSERT_NE(node, nullptr);
  IoRuntime runtime(1);
  auto reply = CallAndWait(*Client(runtime, url), Msg(R"({"role":"echo","x":5})"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetInt("x"), 5);
  EXPECT_EQ(node->listener_urls().at(0).find("s3cret"), std::string::npos);
  node->Stop(std::chrono::milliseconds(500));

  for (std::string wrong : {fmt::format("nats://ada:wrong@127.0.0.1:{}", server.port()),
                            fmt::format("nats://127.0.0.1:{}", server.port())}) {
    auto config = ParseNodeConfig(EchoNodeToml(wrong), "test.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto refused = Node::Start(std::move(config).value());
    ASSERT_FALSE(refused.ok()) << wrong;
    std::string text = refused.status().ToString();
    EXPECT_NE(text.find("cannot connect to nats://"), std::string::npos) << text;
    EXPECT_NE(text.find("uthorization"), std::string::npos) << text;
    EXPECT_EQ(text.find("wrong"), std::string::npos) << text;
  }
}

// A cluster over a NATS server that requires TLS and verifies client certificates: two nodes
// find each other and a request crosses over the TLS links; a node without the CA, or without a
// client certificate, is refused at start with a clear error.
TEST(NatsTlsTest, ClusterLinksUseTlsWithAClientCertificate) {
  const TestCerts& certs = SharedCerts();
  NatsServer server("127.0.0.1", {},
                    fmt::format("tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: "
                                "\"{}\"\n  verify: true\n}}",
                                certs.server_cert, certs.server_key, certs.ca));
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  auto node_toml = [&](const std::string& name, bool echo, const std::string& files) {
    return fmt::format(R"(
[node]
name = "{}"
[[listener]]
url = "tcp://127.0.0.1:0"
{}
[cluster]
nats = "{}"
ttl_ms = 2000
{}
)",
                       name, echo ? "[[service]]\nname = \"echo\"\ntype = \"echo\"" : "",
                       server.url(), files);
  };
  std::string files =
      fmt::format("tls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"", certs.ca,
                  certs.client_cert, certs.client_key);
  auto serving = StartNode(node_toml("serving", true, files));
  ASSERT_NE(serving, nullptr);
  auto routing = StartNode(node_toml("routing", false, files));
  ASSERT_NE(routing, nullptr);
  IoRuntime runtime(1);
  auto client = Client(runtime, routing->listener_urls().at(0));
  Result<Message> reply = Status::Internal("not sent");
  for (int i = 0; i < 100 && !reply.ok(); ++i) {
    reply = CallAndWait(*client, Msg(R"({"role":"echo","x":7})"));
    if (!reply.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetInt("x"), 7);

  const std::string refusals[] = {
      "",                                             // plain text to a TLS server
      fmt::format("tls_ca_file = \"{}\"", certs.ca),  // no client certificate
      fmt::format("tls_ca_file = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                  certs.other_ca, certs.client_cert, certs.client_key)};  // the wrong CA
  for (const std::string& wrong : refusals) {
    auto config = ParseNodeConfig(node_toml("refused", true, wrong), "test.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto refused = Node::Start(std::move(config).value());
    ASSERT_FALSE(refused.ok()) << wrong;
    EXPECT_THAT(refused.status().ToString(), ::testing::HasSubstr("cannot connect to nats://"))
        << wrong;
  }
  routing->Stop(std::chrono::milliseconds(500));
  serving->Stop(std::chrono::milliseconds(500));
}

// A NATS server that knows one NKey user: a node signs in with `nkey` and `nkey_seed_file`; the
// seed of another key, or none, is refused at start.
TEST(NatsNKeyTest, AClusterNodeSignsInWithAnNKeySeedFile) {
  NKey key = MakeNKey(NKey::kUser), other = MakeNKey(NKey::kUser);
  const std::string& user = key.public_key;
  NatsServer server("127.0.0.1", {},
                    fmt::format("authorization {{ users = [ {{ nkey: \"{}\" }} ] }}", user));
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  TempDir dir;
  auto toml = [&](const std::string& auth) {
    return fmt::format(
        "[[service]]\nname = \"echo\"\ntype = \"echo\"\n[cluster]\nnats = "
        "\"{}\"\n{}\n",
        server.url(), auth);
  };
  std::string good =
      fmt::format("nkey = \"{}\"\nnkey_seed_file = \"{}\"", user, dir.Write("user.nk", key.seed));
  auto node = StartNode(toml(good));
  ASSERT_NE(node, nullptr);
  node->Stop(std::chrono::milliseconds(500));
  for (const std::string& wrong : {fmt::format("nkey = \"{}\"\nnkey_seed_file = \"{}\"", user,
                                               dir.Write("other.nk", other.seed)),
                                   std::string()}) {
    auto config = ParseNodeConfig(toml(wrong), "test.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto refused = Node::Start(std::move(config).value());
    ASSERT_FALSE(refused.ok()) << wrong;
    EXPECT_THAT(refused.status().ToString(), ::testing::HasSubstr("cannot connect to nats://"));
    EXPECT_THAT(refused.status().ToString(), ::testing::HasSubstr("uthorization")) << wrong;
  }
}

TEST(NatsBatchTest, ABatchOfMalformedFramingIsRefusedByTheParser) {
  std::vector<BatchItem> items;
  std::string batch(kBatchMagic);
  AppendBatchItem(batch, 12, "abc");
  batch += "x 3\nabc";
  Status status = ParseBatch(batch, items);
  EXPECT_EQ(status.code(), Code::kInvalid);
  EXPECT_NE(status.message().find("byte"), std::string::npos) << status.message();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].n, 12u);
  EXPECT_EQ(items[0].body, "abc");
}

// Requests sent together while nobody serves them answer `unavailable` (NATS's "no responders"
// reaches the whole batch), not `timeout` at their 20 s timeout.
TEST(NatsBatchTest, ABatchNobodyServesAnswersUnavailableAtOnce) {
  NatsServer server;  // its own server: no node of another test subscribes there
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  IoRuntime runtime(1);
  auto client = Client(runtime, server.url(), ClientOptions{.timeout = std::chrono::seconds(20)});
  Replies replies;
  for (int i = 0; i < 200; ++i) {
    Message m;
    m.SetString("role", "echo").SetInt("i", i);
    Context context(nullptr, nullptr, {});
    client->Handle(std::move(m), context, replies.Collect());
  }
  auto results = replies.Wait(std::chrono::seconds(10));
  ASSERT_EQ(results.size(), 200u);
  for (auto& r : results) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, TransportTest,
                         ::testing::Values(Transport{Scheme::kTcp}, Transport{Scheme::kHttp},
                                           Transport{Scheme::kTcp, true},
                                           Transport{Scheme::kHttp, true},
                                           Transport{Scheme::kInproc}, Transport{Scheme::kNats}),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return Name(info.param);
                         });

}  // namespace
}  // namespace shardkit::services::testing
