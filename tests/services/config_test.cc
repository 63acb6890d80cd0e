// Node config, endpoints, settings and the service registry: plain data, validated, with errors
// that name the file, the key and the problem.
#include <gmock/gmock.h>

#include "shardkit/services/registry.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

TEST(EndpointTest, ParsesTcpHttpAndInproc) {
  auto tcp = ParseEndpoint("tcp://127.0.0.1:7001");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->scheme, Scheme::kTcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 7001);
  EXPECT_EQ(tcp->ToString(), "tcp://127.0.0.1:7001");
  EXPECT_EQ(ParseEndpoint("http://localhost:0")->port, 0);
  EXPECT_EQ(ParseEndpoint("inproc://orders")->name, "orders");
}

TEST(EndpointTest, NatsCredentialsAreKeptForConnectingAndNeverShown) {
  auto user = ParseEndpoint("nats://ada:s3cret@10.0.0.5:4222");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->credentials, "ada:s3cret");
  EXPECT_EQ(user->host, "10.0.0.5");
  EXPECT_EQ(user->port, 4222);
  EXPECT_EQ(user->ToString(), "nats://ada:***@10.0.0.5:4222");
  EXPECT_EQ(user->ToSecretString(), "nats://ada:s3cret@10.0.0.5:4222");
  auto token = ParseEndpoint("nats://t0ken@127.0.0.1:4222");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->ToString(), "nats://***@127.0.0.1:4222");
  EXPECT_EQ(Shown("nats://ada:s3cret@10.0.0.5:4222"), "nats://ada:***@10.0.0.5:4222");
  EXPECT_EQ(Shown("orders"), "orders");
  // Errors name the problem without the secret.
  auto tcp = ParseEndpoint("tcp://ada:s3cret@127.0.0.1:7001");
  ASSERT_FALSE(tcp.ok());
  EXPECT_THAT(tcp.status().message(), HasSubstr("nats:// only"));
  EXPECT_EQ(tcp.status().message().find("s3cret"), std::string::npos) << tcp.status().message();
  auto port = ParseEndpoint("nats://ada:s3cret@127.0.0.1:99999");
  ASSERT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), HasSubstr("port '99999'"));
  EXPECT_EQ(port.status().message().find("s3cret"), std::string::npos) << port.status().message();
  EXPECT_FALSE(ParseEndpoint("nats://@127.0.0.1:4222").ok());
  EXPECT_FALSE(ParseEndpoint("nats://:pw@127.0.0.1:4222").ok());
}

TEST(EndpointTest, RefusesBadUrlsSayingWhy) {
  EXPECT_THAT(ParseEndpoint("udp://1.2.3.4:5").status().message(),
              HasSubstr("unsupported scheme 'udp'"));
  EXPECT_THAT(ParseEndpoint("tcp://127.0.0.1:99999").status().message(), HasSubstr("port '99999'"));
  EXPECT_THAT(ParseEndpoint("tcp://127.0.0.1").status().message(), HasSubstr("host:port"));
  EXPECT_FALSE(ParseEndpoint("orders").ok());
}

TEST(NodeConfigTest, ReadsEverySection) {
  auto config = ParseNodeConfig(R"(
[node]
name = "orders-1"
threads = 3
request_timeout_ms = 2000
[[listener]]
url = "tcp://127.0.0.1:0"
external = true
token = "s3cret"
max_message_bytes = 1000
[[service]]
name = "kv"
type = "kv"
patterns = ["store:*,kind:entry"]
max_in_flight = 8
preload = 5
[[route]]
pattern = "store:*,kind:user"
to = "tcp://127.0.0.1:7002"
timeout_ms = 250
)",
                                "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "orders-1");
  EXPECT_EQ(config->threads, 3);
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_TRUE(config->listeners[0].external);
  EXPECT_EQ(config->listeners[0].token, "s3cret");
  EXPECT_EQ(config->listeners[0].max_message_bytes, 1000u);
  EXPECT_EQ(config->listeners[0].request_timeout_ms, 2000);
  ASSERT_EQ(config->services.size(), 1u);
  EXPECT_EQ(config->services[0].max_in_flight, 8);
  EXPECT_EQ(config->services[0].patterns, std::vector<std::string>{"store:*,kind:entry"});
  EXPECT_EQ(*config->services[0].settings.GetInt("preload"), 5);
  EXPECT_FALSE(config->services[0].settings.Has("max_in_flight"));
  ASSERT_EQ(config->routes.size(), 1u);
  EXPECT_EQ(config->routes[0].timeout_ms, 250);
}

TEST(NodeConfigTest, MaxReplyBytesIsANodeSettingEveryListenerKeepsAndWritesFitUnderIt) {
  auto config = ParseNodeConfig(R"(
[node]
max_reply_bytes = 1048576
[[listener]]
url = "tcp://127.0.0.1:0"
max_message_bytes = 524288
)",
                                "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->max_reply_bytes, 1048576u);
  EXPECT_EQ(config->listeners[0].max_reply_bytes, 1048576u);
  EXPECT_EQ(ParseNodeConfig("", "node.toml")->max_reply_bytes, kDefaultMaxReplyBytes);
  auto too_small = ParseNodeConfig("[node]\nmax_reply_bytes = 1000\n", "node.toml");
  ASSERT_FALSE(too_small.ok());
  EXPECT_THAT(too_small.status().message(), HasSubstr("node.toml: node.max_reply_bytes"));
  // The default listener's max_message_bytes (4 MiB) is over half of 1 MiB.
  auto request_too_large = ParseNodeConfig(R"(
[node]
max_reply_bytes = 1048576
[[listener]]
url = "tcp://127.0.0.1:0"
)",
                                           "node.toml");
  ASSERT_FALSE(request_too_large.ok());
  EXPECT_THAT(request_too_large.status().message(),
              HasSubstr("listener[0].max_message_bytes: must be at most half of [node] "
                        "max_reply_bytes (1048576)"));
}

TEST(NodeConfigTest, TokensHaveRolesAndListenersAcceptEveryTokenUnlessTheyNameSome) {
  auto config = ParseNodeConfig(R"(
[[token]]
name = "app"
secret = "app-secret-0123456789"
role = "client"
[[token]]
name = "ops"
secret = "ops-secret-0123456789"
role = "admin"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "https://0.0.0.0:0"
external = true
tls_cert_file = "node.crt"
tls_key_file = "node.key"
tokens = ["app"]
allow = ["store:*"]
max_connections_per_peer = 7
)",
                                "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->listeners.size(), 2u);
  ASSERT_EQ(config->listeners[0].tokens.size(), 2u);
  EXPECT_EQ(config->listeners[0].tokens[1].role, Role::kAdmin);
  ASSERT_EQ(config->listeners[1].tokens.size(), 1u);
  EXPECT_EQ(config->listeners[1].tokens[0].name, "app");
  EXPECT_EQ(config->listeners[1].tokens[0].role, Role::kClient);
  EXPECT_EQ(config->listeners[1].allow, std::vector<std::string>{"store:*"});
  EXPECT_EQ(config->listeners[1].max_connections_per_peer, 7);
  EXPECT_EQ(config->listeners[1].max_connections, 4096);
}

struct BadConfig {
  const char* toml;
  const char* error;
};

TEST(NodeConfigTest, ErrorsNameTheFileTheKeyAndTheProblem) {
  const BadConfig cases[] = {
      {"[[listener]]\nurl = \"udp://127.0.0.1:1\"",
       "node.toml: listener[0].url: 'udp://127.0.0.1:1': unsupported scheme"},
      {"[[listener]]\nurl = 7", "node.toml: listener[0].url: must be a string"},
      {"[[listener]]\nurl = \"tcp://127.0.0.1:0\"\nexternl = true",
       "node.toml: listener[0].externl: unknown key"},
      {"[node]\nthreads = 0", "node.toml: node.threads: must be from 1 to 64, not 0"},
      {"[[service]]\nname = \"a\"", "node.toml: service[0].type: missing"},
      {"[[service]]\nname = \"a\"\ntype = \"kv\"\n[[service]]\nname = \"a\"\ntype = \"kv\"",
       "node.toml: service[1].name: 'a' is used twice"},
      {"[[route]]\npattern = \"kind:\"\nto = \"x\"",
       "node.toml: route[0].pattern: pattern 'kind:'"},
      {"[[route]]\npattern = \"a:1\"\nto = \"nowhere\"",
       "node.toml: route[0].to: no [[service]] named 'nowhere'"},
      {"[nodes]\nname = \"x\"", "node.toml: nodes: unknown section"},
      {"[node\nname = 1", "node.toml:1:"},
      {"[[token]]\nname = \"a\"\nsecret = \"short\"\nrole = \"client\"",
       "node.toml: token[0].secret: must be at least 16 characters"},
      {"[[token]]\nname = \"a\"\nsecret = \"0123456789abcdef\"\nrole = \"root\"",
       "node.toml: token[0].role: 'root': must be client or admin"},
      {"[[listener]]\nurl = \"tcp://127.0.0.1:0\"\ntokens = [\"nobody\"]",
       "node.toml: listener[0].tokens: no [[token]] named 'nobody'"},
      {"[[listener]]\nurl = \"tcp://127.0.0.1:0\"\nallow = [\"kind:\"]",
       "node.toml: listener[0].allow: pattern 'kind:'"},
      {"[[listener]]\nurl = \"http://10.1.2.3:0\"\nexternal = true",
       "node.toml: listener[0].url: an external listener on 10.1.2.3 without a token"},
      {"[[listener]]\nurl = \"tcp://127.0.0.1:0\"\nmax_connections = 0",
       "node.toml: listener[0].max_connections: must be from 1"},
      {"[[listener]]\nurl = \"tcp://10.1.2.3:0\"\nexternal = true\ntoken = \"0123456789abcdef\"",
       "node.toml: listener[0].url: an external listener on 10.1.2.3 without TLS sends its tokens"},
      {"[[listener]]\nurl = \"tls://127.0.0.1:0\"\ntls_key_file = \"k.pem\"",
       "node.toml: listener[0].tls_cert_file: a tls:// or https:// listener needs its "
       "certificate"},
      {"[[listener]]\nurl = \"https://127.0.0.1:0\"\ntls_cert_file = \"c.pem\"",
       "node.toml: listener[0].tls_key_file: a tls:// or https:// listener needs its private key"},
      {"[[listener]]\nurl = \"tcp://127.0.0.1:0\"\ntls_cert_file = \"c.pem\"",
       "node.toml: listener[0].tls_cert_file: only tls:// and https:// listeners take TLS files"},
      {"[[service]]\nname = \"a\"\ntype = \"kv\"\n[[route]]\npattern = \"a:1\"\nto = "
       "\"tcp://127.0.0.1:1\"\ntls_ca_file = \"ca.pem\"",
       "node.toml: route[0].tls_ca_file: only routes to tls:// or https:// take TLS files"},
  };
  for (const BadConfig& c : cases) {
    auto config = ParseNodeConfig(c.toml, "node.toml");
    ASSERT_FALSE(config.ok()) << c.toml;
    EXPECT_EQ(config.status().code(), Code::kInvalid);
    EXPECT_THAT(config.status().message(), HasSubstr(c.error)) << c.toml;
  }
}

TEST(NodeConfigTest, ClusterSectionIsReadWithDefaults) {
  auto alone = ParseNodeConfig("[node]\nname = \"a\"\n", "node.toml");
  ASSERT_TRUE(alone.ok());
  EXPECT_TRUE(alone->cluster.nats.empty());
  auto config = ParseNodeConfig("cluster = { nats = \"nats://10.0.0.5:4222\", ttl_ms = 9000 }\n",
                                "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->cluster.nats, "nats://10.0.0.5:4222");
  EXPECT_EQ(config->cluster.ttl_ms, 9000);
  EXPECT_EQ(config->cluster.registry_bucket, "shardkit_registry");
  EXPECT_EQ(config->cluster.maps_bucket, "shardkit_maps");
  EXPECT_EQ(config->cluster.resend_after_ms, 1000);
  EXPECT_EQ(ParseEndpoint("nats://127.0.0.1:4222")->scheme, Scheme::kNats);
}

TEST(NodeConfigTest, ClusterErrorsNameTheKey) {
  auto error = [](std::string_view toml) {
    return ParseNodeConfig(toml, "node.toml").status().message();
  };
  EXPECT_EQ(error("[cluster]\nttl_ms = 5000\n"),
            "node.toml: cluster.nats: missing (a string is required)");
  EXPECT_THAT(
      error("[cluster]\nnats = \"tcp://127.0.0.1:4222\"\n"),
      HasSubstr("node.toml: cluster.nats: 'tcp://127.0.0.1:4222': must be nats://host:port"));
  EXPECT_THAT(error("[cluster]\nnats = \"nats://h:1\"\nregistry_bucket = \"a.b\"\n"),
              HasSubstr("cluster.registry_bucket: 'a.b': only letters, digits"));
  EXPECT_THAT(error("[cluster]\nnats = \"nats://h:1\"\nttl_ms = 10\n"),
              HasSubstr("cluster.ttl_ms: must be from 1000"));
  EXPECT_THAT(error("[cluster]\nnats = \"nats://h:1\"\nnatz = 1\n"),
              HasSubstr("cluster.natz: unknown key"));
  EXPECT_THAT(error("cluster = 3\n"), HasSubstr("node.toml: cluster: must be a table"));
}

TEST(NodeConfigTest, MissingFileIsNamed) {
  auto config = LoadNodeConfig("/nonexistent/node.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("/nonexistent/node.toml: cannot read"));
}

TEST(SettingsTest, GettersNameTheServiceAndKey) {
  auto settings = Settings::FromToml("path = 3\nsize = 10\nnames = [\"a\", \"b\"]",
                                     "node.toml: service 'orders' (store)");
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->GetString("path").status().message(),
            "node.toml: service 'orders' (store): key 'path': must be a string");
  EXPECT_EQ(*settings->GetInt("size"), 10);
  EXPECT_EQ(*settings->GetInt("absent", 7), 7);
  EXPECT_FALSE(settings->GetInt("absent").ok());
  EXPECT_EQ(*settings->GetStringList("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_THAT(settings->CheckOnly({"path", "size"}).message(),
              HasSubstr("key 'names': unknown key"));
  EXPECT_THAT(settings->Json(), HasSubstr("\"size\":10"));
}

TEST(RegistryTest, RegisteringATypeIsOneCallAndNamesMustBeUnique) {
  auto factory = [](const ServiceContext& ctx) -> Result<ServiceInstance> {
    return ServiceInstance{
        MakeSyncHandler([](Message m, const Context&) -> Result<Message> { return m; }),
        {"t:1"},
        nullptr};
  };
  ASSERT_TRUE(RegisterServiceType("registry-test-type", factory).ok());
  EXPECT_NE(ServiceRegistry::Global().Find("registry-test-type"), nullptr);
  EXPECT_EQ(RegisterServiceType("registry-test-type", factory).code(), Code::kConflict);
  EXPECT_NE(ServiceRegistry::Global().Find("echo"), nullptr);
  EXPECT_NE(ServiceRegistry::Global().Find("kv"), nullptr);
}

TEST(RegistryTest, NodeRefusesAnUnknownTypeListingTheKnownOnes) {
  auto config = ParseNodeConfig("[[service]]\nname = \"a\"\ntype = \"nosuch\"", "node.toml");
  ASSERT_TRUE(config.ok());
  auto node = Node::Start(std::move(config).value());
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(),
              HasSubstr("node.toml: service 'a': unknown type 'nosuch' (registered: echo, kv"));
}

TEST(RegistryTest, FactoryErrorsRefuseTheConfig) {
  auto config =
      ParseNodeConfig("[[service]]\nname = \"a\"\ntype = \"kv\"\npreload = \"many\"", "node.toml");
  ASSERT_TRUE(config.ok());
  auto node = Node::Start(std::move(config).value());
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().message(),
            "node.toml: service 'a' (kv): key 'preload': must be an integer");
}

}  // namespace
}  // namespace shardkit::services::testing
