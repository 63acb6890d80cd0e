// NATS operator mode: a real nats-server trusts an operator made at test time (nkeys.h), knows
// its accounts from a memory resolver, and admits users by the JWT and NKey seed of their
// `.creds` file. A node signs in with `creds_file`; a wrong or missing file is refused at start.
#include <chrono>
#include <thread>

#include <gmock/gmock.h>

#include "nats_server.h"
#include "nkeys.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

// The server's trust: an operator, a system account and one account for the nodes, preloaded.
struct Operator {
  NKey op = MakeNKey(NKey::kOperator);
  NKey system = MakeNKey(NKey::kAccount);
  NKey account = MakeNKey(NKey::kAccount);

  std::string ServerConfig(const TempDir& dir) const {
    return fmt::format(
        "operator: \"{}\"\nsystem_account: \"{}\"\nresolver: MEMORY\n"
        "resolver_preload: {{\n  {}: \"{}\"\n  {}: \"{}\"\n}}\n",
        dir.Write("operator.jwt", OperatorJwt(op)), system.public_key, system.public_key,
        AccountJwt(op, system, "SYS", /*jetstream=*/false), account.public_key,
        AccountJwt(op, account, "nodes"));
  }

  // A .creds file for a new user of `signer` (the nodes' account unless given).
  std::string UserCreds(const TempDir& dir, const std::string& name,
                        const NKey* signer = nullptr) const {
    NKey user = MakeNKey(NKey::kUser);
    return dir.Write(name, CredsFile(UserJwt(signer ? *signer : account, user), user));
  }
};

std::string ClusterToml(const std::string& name, bool echo, const std::string& nats,
                        const std::string& auth) {
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
                     name, echo ? "[[service]]\nname = \"echo\"\ntype = \"echo\"" : "", nats, auth);
}

std::string Creds(const std::string& path) { return fmt::format("creds_file = \"{}\"", path); }

// Two nodes, each with a .creds file of its own, join the cluster through the operator-mode
// server; a request to one is served by the other.
TEST(NatsCredsTest, NodesWithTheirCredsFilesJoinTheClusterAndServe) {
  TempDir dir;
  Operator trust;
  NatsServer server("127.0.0.1", {}, trust.ServerConfig(dir));
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  auto serving =
      StartNode(ClusterToml("serving", true, server.url(), Creds(trust.UserCreds(dir, "a.creds"))));
  ASSERT_NE(serving, nullptr);
  auto routing = StartNode(
      ClusterToml("routing", false, server.url(), Creds(trust.UserCreds(dir, "b.creds"))));
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
  routing->Stop(std::chrono::milliseconds(500));
  serving->Stop(std::chrono::milliseconds(500));
}

// Refused at start, the error naming the file: a user of an account the server does not trust,
// a JWT with another user's seed (its signature of the server's nonce fails), a file that is not
// there, and no credentials at all.
TEST(NatsCredsTest, AWrongOrAbsentCredsFileIsRefusedNamingTheFile) {
  TempDir dir;
  Operator trust;
  NatsServer server("127.0.0.1", {}, trust.ServerConfig(dir));
  SHARDKIT_REQUIRE_COMPONENT(server.ok(), server.problem(), "nats-server");
  NKey stranger = MakeNKey(NKey::kAccount);
  NKey user = MakeNKey(NKey::kUser), other = MakeNKey(NKey::kUser);
  std::string untrusted = trust.UserCreds(dir, "untrusted.creds", &stranger);
  std::string mismatched =
      dir.Write("mismatched.creds", CredsFile(UserJwt(trust.account, user), other));
  std::string missing = dir.File("missing.creds");
  for (const std::string& path : {untrusted, mismatched, missing}) {
    auto config =
        ParseNodeConfig(ClusterToml("refused", true, server.url(), Creds(path)), "t.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto refused = Node::Start(std::move(config).value());
    ASSERT_FALSE(refused.ok()) << path;
    std::string text = refused.status().ToString();
    EXPECT_THAT(text, ::testing::HasSubstr(fmt::format("creds_file '{}'", path)));
    if (path == missing) {
      EXPECT_THAT(text, ::testing::HasSubstr("No such file")) << text;
    } else {
      EXPECT_THAT(text, ::testing::HasSubstr("cannot connect to nats://")) << text;
      EXPECT_THAT(text, ::testing::HasSubstr("uthorization")) << text;
    }
  }
  auto config = ParseNodeConfig(ClusterToml("anonymous", true, server.url(), ""), "t.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto refused = Node::Start(std::move(config).value());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().ToString(), ::testing::HasSubstr("uthorization"));
}

}  // namespace
}  // namespace shardkit::services::testing
