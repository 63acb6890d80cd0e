// The microblog services on one in-process bus over a memory store: the messages of the book's
// case study, end to end, and their bad input. (The real-process version is demo_test.cc.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <thread>

#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

#include "microblog/services.h"

namespace microblog {
namespace {

using shardkit::Bus;
using shardkit::Code;
using shardkit::Message;
using shardkit::Result;
using ::testing::HasSubstr;

class MicroblogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = shardkit::store::NewMemoryStore({});
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(bus_.Add("store:*", shardkit::store::MakeStoreService(std::move(*store))).ok());
    ASSERT_TRUE(bus_.Add("post:entry", MakePostService()).ok());
    ASSERT_TRUE(bus_.Add("search:*", MakeIndexService()).ok());
    ASSERT_TRUE(bus_.Add("follow:*", MakeFollowService()).ok());
    ASSERT_TRUE(bus_.Add("timeline:*", MakeTimelineService()).ok());
  }
  // info:entry to index and fanout, as the post node's broadcast does.
  void Subscribe() {
    ASSERT_TRUE(bus_.Add("info:entry", MakeBroadcastService({{"index", MakeIndexService()},
                                                             {"fanout", MakeFanoutService()}}))
                    .ok());
  }
  Result<Message> Act(std::string_view json) {
    auto message = shardkit::ParseMessage(json);
    EXPECT_TRUE(message.ok()) << json;
    return bus_.ActAndWait(std::move(message).value(), std::chrono::seconds(5));
  }
  size_t Items(const Result<Message>& reply, std::string_view field = "items") {
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return 0;
    auto doc = shardkit::ParseJson(reply->GetArrayJson(field).value_or("[]"), "items");
    return doc.ok() ? doc->Size() : 0;
  }
  Bus bus_;
};

TEST_F(MicroblogTest, PostWithNobodyListeningIsSavedAndSaysAnnouncedZero) {
  auto reply = Act(R"({"post":"entry","user":"ann","text":"first"})");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetUint("announced"), 0u);
  EXPECT_EQ(Items(Act(R"({"store":"list","kind":"entry","q":{"user":"ann"}})")), 1u);
}

TEST_F(MicroblogTest, AnAnnouncedPostIsSearchableAndOnTheTimelinesOfAuthorAndFollowers) {
  Subscribe();
  ASSERT_TRUE(Act(R"({"follow":"user","user":"bob","target":"ann"})").ok());
  ASSERT_TRUE(Act(R"({"follow":"user","user":"cid","target":"ann"})").ok());
  ASSERT_TRUE(Act(R"({"follow":"user","user":"ann","target":"bob"})").ok());
  auto posted = Act(R"({"post":"entry","user":"ann","text":"Coffee in the rain"})");
  ASSERT_TRUE(posted.ok()) << posted.status().ToString();
  EXPECT_EQ(posted->GetUint("announced"), 2u);  // index and fanout

  auto found = Act(R"({"search":"query","query":"rain COFFEE"})");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->GetUint("count"), 1u);
  EXPECT_THAT(std::string(found->GetArrayJson("items").value_or("")),
              HasSubstr("Coffee in the rain"));
  EXPECT_EQ(Act(R"({"search":"query","query":"coffee tea"})")->GetUint("count"), 0u);

  EXPECT_EQ(Items(Act(R"({"timeline":"list","user":"ann"})")), 1u);
  EXPECT_EQ(Items(Act(R"({"timeline":"list","user":"bob"})")), 1u);
  EXPECT_EQ(Items(Act(R"({"timeline":"list","user":"cid"})")), 1u);
  EXPECT_EQ(Items(Act(R"({"timeline":"list","user":"dan"})")), 0u);

  auto followers = Act(R"({"follow":"list","kind":"followers","user":"ann"})");
  EXPECT_EQ(Items(followers, "users"), 2u);
  auto following = Act(R"({"follow":"list","kind":"following","user":"ann"})");
  EXPECT_EQ(std::string(following->GetArrayJson("users").value_or("")), R"(["bob"])");
}

TEST_F(MicroblogTest, TimelinesAreNewestFirstAndFollowingTwiceIsOneFollow) {
  Subscribe();
  ASSERT_TRUE(Act(R"({"follow":"user","user":"bob","target":"ann"})").ok());
  ASSERT_TRUE(Act(R"({"follow":"user","user":"bob","target":"ann"})").ok());
  EXPECT_EQ(Items(Act(R"({"follow":"list","kind":"followers","user":"ann"})"), "users"), 1u);
  for (const char* text : {"one", "two", "three"}) {
    ASSERT_TRUE(Act(fmt::format(R"({{"post":"entry","user":"ann","text":"{}"}})", text)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // distinct `at`
  }
  auto page = Act(R"({"timeline":"list","user":"bob","limit":2})");
  ASSERT_EQ(Items(page), 2u);
  std::string items(page->GetArrayJson("items").value_or(""));
  EXPECT_LT(items.find("three"), items.find("two"));
  EXPECT_EQ(items.find("one"), std::string::npos);
}

TEST_F(MicroblogTest, BadInputIsRefusedNamingTheFieldAndWritesNothing) {
  Subscribe();
  struct Case {
    const char* json;
    const char* field;
  };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"post":"entry","text":"no user"})", "user:"},
           {R"({"post":"entry","user":"ann"})", "text:"},
           {R"({"follow":"user","user":"ann","target":"ann"})", "target:"},
           {R"({"follow":"list","kind":"enemies","user":"ann"})", "kind:"},
           {R"({"follow":"list","kind":"followers"})", "user:"},
           {R"({"timeline":"list","user":"ann","limit":0})", "limit:"},
           {R"({"timeline":"insert","user":"ann","ent":{"id":"1"}})", "ent.user:"},
           {R"({"search":"query","query":"  !! "})", "query:"},
           {R"({"search":"insert","user":"ann","text":"x"})", "id:"},
       }) {
    auto reply = Act(c.json);
    ASSERT_FALSE(reply.ok()) << c.json;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << c.json;
    EXPECT_THAT(reply.status().message(), HasSubstr(c.field)) << c.json;
  }
  // Through the broadcast, a subscriber's refusal is "not delivered", still naming the field.
  auto info = Act(R"({"info":"entry","ent":"not an object"})");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kUnavailable);
  EXPECT_THAT(info.status().message(), HasSubstr("ent: must be an object"));
  std::string long_text(281, 'x');
  auto reply = Act(fmt::format(R"({{"post":"entry","user":"ann","text":"{}"}})", long_text));
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply.status().message(), HasSubstr("longer than 280"));
  EXPECT_EQ(Items(Act(R"({"store":"list","kind":"entry"})")), 0u);
  EXPECT_EQ(Items(Act(R"({"store":"list","kind":"follow"})")), 0u);
}

TEST_F(MicroblogTest, AFailedSubscriberFailsThePostNamingItButTheEntryIsSaved) {
  auto failing =
      shardkit::MakeSyncHandler([](Message, const shardkit::Context&) -> Result<Message> {
        return shardkit::Status::Internal("index disk full");
      });
  ASSERT_TRUE(bus_.Add("info:entry", MakeBroadcastService({{"index-node", failing},
                                                           {"fanout", MakeFanoutService()}}))
                  .ok());
  auto reply = Act(R"({"post":"entry","user":"ann","text":"hello"})");
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kUnavailable);
  EXPECT_THAT(reply.status().message(), HasSubstr("index-node"));
  EXPECT_THAT(reply.status().message(), HasSubstr("index disk full"));
  EXPECT_THAT(reply.status().message(), HasSubstr("the entry was saved"));
  EXPECT_EQ(Items(Act(R"({"store":"list","kind":"entry"})")), 1u);
  EXPECT_EQ(Items(Act(R"({"timeline":"list","user":"ann"})")), 1u);  // fanout still delivered
}

}  // namespace
}  // namespace microblog
