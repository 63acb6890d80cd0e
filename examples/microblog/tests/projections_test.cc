// The microblog's read models (projections.h) as a shardkit-microblog node runs them: projection
// services of the types microblog.* over a command log, built from node TOML, answering their
// queries with read-your-writes; bad queries and bad settings name the field or key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <shardkit/message/codec.h>
#include <shardkit/services/config.h>
#include <shardkit/services/data_services.h>
#include <shardkit/services/node.h>
#include <shardkit/testing/temp_dir.h>

#include "microblog/services.h"

namespace microblog {
namespace {

using shardkit::Code;
using shardkit::Message;
using shardkit::Result;
using ::testing::HasSubstr;

using shardkit::testing::TempDir;

// Commands for entries and follows go to a command log applied to a memory store; three read
// models follow the log. `extra` is appended to the entries-per-user table.
std::string NodeToml(const TempDir& dir, std::string_view extra = "") {
  return fmt::format(R"(
[node]
name = "views"
[[service]]
name = "commands"
type = "command-log"
path = "{0}/log"
durability = "none"
[[service]]
name = "target"
type = "store"
backend = "memory"
patterns = ["store:*,kind:*,cqrs:apply"]
[[service]]
name = "search"
type = "projection"
projection = "microblog.search-index"
log = "commands"
path = "{0}/search"
[[service]]
name = "followers"
type = "projection"
projection = "microblog.follower-count"
log = "commands"
path = "{0}/followers"
[[service]]
name = "per-user"
type = "projection"
projection = "microblog.entries-per-user"
log = "commands"
path = "{0}/per-user"
{1}
[[route]]
pattern = "store:save"
to = "commands"
[[route]]
pattern = "store:remove"
to = "commands"
)",
                     dir.path(), extra);
}

Result<std::unique_ptr<shardkit::services::Node>> Start(const std::string& toml) {
  shardkit::services::RegisterDataServices();
  RegisterMicroblogServices();
  auto config = shardkit::services::ParseNodeConfig(toml, "views.toml");
  if (!config.ok()) return config.status();
  shardkit::services::NodeOptions options;
  options.listen = false;
  options.environment.directory = std::make_shared<shardkit::services::ServiceDirectory>();
  return shardkit::services::Node::Start(*config, std::move(options));
}

class MicroblogProjections : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = Start(NodeToml(dir_));
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(node).value();
  }
  Result<Message> Try(std::string_view json) {
    auto m = shardkit::ParseMessage(json);
    if (!m.ok()) return m.status();
    return node_->bus().ActAndWait(std::move(m).value(), std::chrono::seconds(10));
  }
  Message Act(std::string_view json) {
    auto reply = Try(json);
    EXPECT_TRUE(reply.ok()) << json << " -> " << reply.status().ToString();
    return reply.ok() ? std::move(reply).value() : Message();
  }
  // The position of a command, as a read's `min_position` suffix.
  std::string After(std::string_view command) {
    return fmt::format(R"(,"min_position":{}}})", Act(command).GetUint("position").value_or(0));
  }
  static std::string Ids(const Message& m) {
    return std::string(m.GetArrayJson("ids").value_or("?"));
  }

  TempDir dir_;
  std::unique_ptr<shardkit::services::Node> node_;
};

TEST_F(MicroblogProjections, FollowSavesUpdatesAndRemoves) {
  Act(R"({"store":"save","kind":"entry","ent":{"id":"1","user":"ann","text":"Hello brave World"}})");
  Act(R"({"store":"save","kind":"entry","ent":{"id":"2","user":"ann","text":"hello again"}})");
  Act(R"({"store":"save","kind":"entry","ent":{"id":"3","user":"bob","text":"world peace"}})");
  Act(R"({"store":"save","kind":"follow","ent":{"id":"f1","follower":"bob","followee":"ann"}})");
  const std::string wait = After(
      R"({"store":"save","kind":"follow","ent":{"id":"f2","follower":"cat","followee":"ann"}})");
  Message ann = Act(R"({"entries":"user","user":"ann")" + wait);
  EXPECT_EQ(ann.GetUint("count"), 2u);
  EXPECT_EQ(Ids(ann), R"(["1","2"])");
  EXPECT_EQ(Ids(Act(R"({"search":"query","text":"HELLO")" + wait)), R"(["1","2"])");
  EXPECT_EQ(Ids(Act(R"({"search":"query","text":"hello world")" + wait)), R"(["1"])");
  EXPECT_EQ(Act(R"({"followers":"count","user":"ann")" + wait).GetUint("followers"), 2u);

  // Entry 1 moves to bob with new text; entry 2 and follow f1 go away.
  Act(R"({"store":"save","kind":"entry","ent":{"id":"1","user":"bob","text":"goodbye"}})");
  Act(R"({"store":"remove","kind":"entry","id":"2"})");
  const std::string wait2 = After(R"({"store":"remove","kind":"follow","id":"f1"})");
  EXPECT_EQ(Act(R"({"entries":"user","user":"ann")" + wait2).GetUint("count"), 0u);
  EXPECT_EQ(Ids(Act(R"({"entries":"user","user":"bob")" + wait2)), R"(["1","3"])");
  EXPECT_EQ(Ids(Act(R"({"search":"query","text":"hello")" + wait2)), "[]");
  EXPECT_EQ(Ids(Act(R"({"search":"query","text":"goodbye")" + wait2)), R"(["1"])");
  EXPECT_EQ(Act(R"({"followers":"count","user":"ann")" + wait2).GetUint("followers"), 1u);
}

TEST_F(MicroblogProjections, BadQueryFieldsAnswerInvalidNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"entries":"user"})", "user"},
      {R"({"entries":"user","user":"u","limit":0})", "limit"},
      {R"({"search":"query","text":"!!"})", "text"},
      {R"({"search":"query"})", "text"},
      {R"({"followers":"count","user":7})", "user"},
  };
  for (const auto& [json, field] : cases) {
    auto reply = Try(json);
    ASSERT_FALSE(reply.ok()) << json;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << json;
    EXPECT_EQ(reply.status().message().rfind(std::string(field) + ":", 0), 0u)
        << reply.status().ToString();
  }
}

TEST(MicroblogProjectionTypes, SettingsAreCheckedNamingServiceAndKey) {
  TempDir dir;
  auto refused = [&](std::string_view extra) {
    auto node = Start(NodeToml(dir, extra));
    return node.ok() ? std::string("started") : node.status().ToString();
  };
  EXPECT_THAT(refused(R"(user_field = "")"),
              HasSubstr("service 'per-user' (projection): key 'user_field': must not be empty"));
  // entries-per-user reads kind and user_field; text_field is search-index's.
  EXPECT_THAT(refused(R"(text_field = "text")"), HasSubstr("key 'text_field': unknown key"));
  EXPECT_EQ(refused(R"(user_field = "author")"), "started");
}

}  // namespace
}  // namespace microblog
