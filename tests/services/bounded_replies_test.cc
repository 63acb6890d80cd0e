// Bounded replies against a real `shardkit serve` process: [node] max_reply_bytes turns a reply
// over it into a clear error (valid JSON, over TCP and HTTP) instead of sending it, and a list page
// over it is refused naming q.limit$; smaller pages, followed by their cursor, answer everything.
#include <gmock/gmock.h>
#include <rapidjson/document.h>

#include <set>

#include "serve_process.h"
#include "shardkit/message/json.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::HasSubstr;

constexpr size_t kMaxReply = 65536;
constexpr int kEntities = 100;  // of about 1 KiB each: 100 KiB in all, over kMaxReply

std::string NodeConfig(const TempDir& dir) {
  return dir.Write("node.toml", fmt::format(R"(
[node]
max_reply_bytes = {}
[[listener]]
url = "tcp://127.0.0.1:0"
max_message_bytes = 16384
[[listener]]
url = "http://127.0.0.1:0"
max_message_bytes = 16384
[[service]]
name = "items"
type = "store"
path = "{}/items"
)",
                                            kMaxReply, dir.path()));
}

std::string Id(int i) { return fmt::format("i{:04}", i); }

// In batches of 10 (10 KiB): requests are bounded by max_message_bytes.
void SaveEntities(Handler& client) {
  for (int batch = 0; batch < kEntities; batch += 10) {
    std::string ents = "[";
    for (int i = batch; i < batch + 10; ++i) {
      ents += fmt::format(R"({}{{"id":"{}","pad":"{}"}})", i > batch ? "," : "", Id(i),
                          std::string(1000, 'x'));
    }
    Message save;
    save.SetString("store", "save").SetString("kind", "item").SetArrayJson("ents", ents + "]");
    auto saved = CallAndWait(client, std::move(save));
    ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  }
}

Message ListMessage(std::string_view q) {
  Message list;
  list.SetString("store", "list").SetString("kind", "item").SetObjectJson("q", q);
  return list;
}

class BoundedRepliesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    urls_ = serve_.WaitReady();
    ASSERT_EQ(urls_.size(), 2u) << serve_.log();
    client_ = Client(runtime_, urls_[0]);
    SaveEntities(*client_);
  }

  TempDir dir_;
  ServeProcess serve_{dir_, NodeConfig(dir_)};
  std::vector<std::string> urls_;
  IoRuntime runtime_{1};
  std::shared_ptr<Handler> client_;
};

TEST_F(BoundedRepliesTest, AListPageOverTheBoundIsRefusedNamingTheLimitAndHowToPage) {
  for (std::string_view q : {R"({"limit$":100})", "{}"}) {  // "{}": the default page (1000)
    auto reply = CallAndWait(*client_, ListMessage(q));
    ASSERT_FALSE(reply.ok()) << q;
    EXPECT_EQ(reply.status().code(), Code::kInvalid) << q;
    EXPECT_THAT(reply.status().message(), HasSubstr("q.limit$"));
    EXPECT_THAT(reply.status().message(),
                HasSubstr(fmt::format("max_reply_bytes ({} bytes)", kMaxReply - 4096)));
    EXPECT_THAT(reply.status().message(), HasSubstr("cursor"));
    EXPECT_THAT(reply.status().details_json(), HasSubstr(R"("field":"q.limit$")"));
  }
}

// Removing by query answers the removed entities: over the bound, nothing is removed.
TEST_F(BoundedRepliesTest, ARemoveByQueryWhoseReplyWouldBeOverTheBoundRemovesNothing) {
  Message remove;
  remove.SetString("store", "remove").SetString("kind", "item").SetBool("all", true);
  auto reply = CallAndWait(*client_, std::move(remove));
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply.status().message(), HasSubstr("max_reply_bytes"));
  auto last = CallAndWait(*client_, Msg(R"({"store":"load","kind":"item","id":"i0099"})"));
  EXPECT_TRUE(last.ok()) << last.status().ToString();
}

// The change feed's reply holds fewer records instead; reading on from the last one gets the rest.
TEST_F(BoundedRepliesTest, AChangesReplyHoldsWhatFitsAndTheRestFollows) {
  std::set<std::string> ids;
  uint64_t from = 1;
  int reads = 0;
  while (ids.size() < static_cast<size_t>(kEntities)) {
    Message changes;
    changes.SetString("store", "changes").SetUint("from", from).SetUint("limit", 1000);
    auto reply = CallAndWait(*client_, std::move(changes));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    rapidjson::Document records;
    auto text = reply->GetArrayJson("changes").value_or("");
    records.Parse(text.data(), text.size());
    ASSERT_TRUE(records.IsArray());
    ASSERT_GT(records.Size(), 0u);
    EXPECT_LT(records.Size(), static_cast<size_t>(kEntities));  // 100 KiB do not fit in 64 KiB
    for (const auto& r : records.GetArray()) {
      ids.insert(r["id"].GetString());
      from = r["seq"].GetUint64() + 1;
    }
    ASSERT_LT(++reads, 10);
  }
  EXPECT_GE(reads, 2);
}

TEST_F(BoundedRepliesTest, SmallerPagesFollowingTheCursorAnswerEveryEntityOnce) {
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    JsonObject q;
    q.Add("limit$", 20);
    if (!cursor.empty()) q.Add("cursor$", cursor);
    auto page = CallAndWait(*client_, ListMessage(q.str()));
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    rapidjson::Document items;
    auto text = page->GetArrayJson("items").value_or("");
    items.Parse(text.data(), text.size());
    ASSERT_TRUE(items.IsArray());
    EXPECT_LE(items.Size(), 20u);
    for (const auto& item : items.GetArray())
      EXPECT_TRUE(seen.insert(item["id"].GetString()).second) << item["id"].GetString();
    cursor = std::string(page->GetString("cursor").value_or(""));
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEntities));
}

// A bulk load is not a list: the listener itself refuses to send a reply over the bound.
TEST_F(BoundedRepliesTest, AnyReplyOverTheBoundIsAClearErrorOverTcp) {
  std::string ids = "[";
  for (int i = 0; i < kEntities; ++i) ids += fmt::format(R"({}"{}")", i ? "," : "", Id(i));
  Message load;
  load.SetString("store", "load").SetString("kind", "item").SetArrayJson("ids", ids + "]");
  auto reply = CallAndWait(*client_, std::move(load));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid);
  EXPECT_THAT(reply.status().message(), HasSubstr("reply too large"));
  EXPECT_THAT(reply.status().message(),
              HasSubstr(fmt::format("over max_reply_bytes ({})", kMaxReply)));
  EXPECT_THAT(reply.status().details_json(),
              HasSubstr(fmt::format(R"("max_reply_bytes":{})", kMaxReply)));
  // The node goes on serving that connection.
  auto small = CallAndWait(*client_, ListMessage(R"({"limit$":2})"));
  EXPECT_TRUE(small.ok()) << small.status().ToString();
}

TEST_F(BoundedRepliesTest, AnyReplyOverTheBoundIsAClearErrorInValidJsonOverHttp) {
  std::string ids = "[";
  for (int i = 0; i < kEntities; ++i) ids += fmt::format(R"({}"{}")", i ? "," : "", Id(i));
  std::string body = fmt::format(R"({{"store":"load","kind":"item","ids":{}]}})", ids);
  RawSocket socket(PortOf(urls_[1]));
  ASSERT_TRUE(socket.Send(fmt::format(
      "POST /act HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      body.size(), body)));
  std::string response = socket.ReadHttpResponse();
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 400"));
  std::string json = response.substr(response.find("\r\n\r\n") + 4);
  EXPECT_LT(json.size(), 1024u);
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  ASSERT_FALSE(doc.HasParseError()) << json;
  ASSERT_TRUE(doc.HasMember("error$")) << json;
  EXPECT_THAT(std::string(doc["error$"]["message"].GetString()), HasSubstr("max_reply_bytes"));
}

// Through a shard router each shard's part fits the bound but all of them together do not: the
// router refuses before any shard removes anything, so the client's error tells the truth.
TEST(BoundedRoutedRemoveTest, ARemoveByQueryOverTheBoundThroughARouterRemovesNothing) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[node]
max_reply_bytes = {0}
[[listener]]
url = "tcp://127.0.0.1:0"
max_message_bytes = 16384
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
path = "{1}/map.json"
[[service]]
name = "router"
type = "shard-router"
node_id = 1
[[service]]
name = "low"
type = "store"
path = "{1}/low"
shard = "-80"
node_id = 2
[[service]]
name = "high"
type = "store"
path = "{1}/high"
shard = "80-"
node_id = 3
)",
                                                             kMaxReply, dir.path())));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  SaveEntities(*client);  // about 50 KiB a shard, 100 KiB in all
  Message remove;
  remove.SetString("store", "remove").SetString("kind", "item").SetBool("all", true);
  auto reply = CallAndWait(*client, std::move(remove));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid) << reply.status().ToString();
  EXPECT_THAT(reply.status().message(), HasSubstr("max_reply_bytes"));
  EXPECT_THAT(reply.status().message(), HasSubstr("nothing was removed"));
  int left = 0;
  for (int i = 0; i < kEntities; ++i) {
    auto loaded = CallAndWait(
        *client, Msg(fmt::format(R"({{"store":"load","kind":"item","id":"{}"}})", Id(i))));
    left += loaded.ok();
  }
  EXPECT_EQ(left, kEntities) << "entities were removed though the client was answered an error";
  // A narrower query fits and is removed across both shards.
  Message some;
  some.SetString("store", "remove").SetString("kind", "item").SetBool("all", true);
  some.SetObjectJson("q", R"({"id":"i0007"})");
  auto removed = CallAndWait(*client, std::move(some));
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->GetUint("count"), 1u);
}

// Seneca's list$ applies its own sort$/skip$/limit$ to every match: the adapter follows the
// store's pages (1000 each) to the end.
TEST(SenecaListTest, AListReadsEveryPageOfTheStore) {
  TempDir dir;
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "items"
type = "store"
path = "{}/items"
[[service]]
name = "seneca"
type = "seneca-entity"
)",
                                                             dir.path())));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  IoRuntime runtime(1);
  auto client = Client(runtime, urls[0]);
  constexpr int kItems = 2500;
  std::string ents = "[";
  for (int i = 0; i < kItems; ++i)
    ents += fmt::format(R"({}{{"id":"{}","n":{}}})", i ? "," : "", Id(i), i);
  Message save;
  save.SetString("store", "save").SetString("kind", "item").SetArrayJson("ents", ents + "]");
  ASSERT_TRUE(CallAndWait(*client, std::move(save)).ok());
  auto listed = CallAndWait(
      *client, Msg(R"({"sys":"entity","cmd":"list","name":"item","q":{"sort$":{"n":-1}}})"));
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  rapidjson::Document items;
  auto text = listed->GetArrayJson("seneca$").value_or("");
  items.Parse(text.data(), text.size());
  ASSERT_TRUE(items.IsArray()) << text.substr(0, 200);
  ASSERT_EQ(items.Size(), static_cast<size_t>(kItems));
  EXPECT_EQ(items[0]["n"].GetInt(), kItems - 1);
  EXPECT_EQ(items[kItems - 1]["n"].GetInt(), 0);
}

}  // namespace
}  // namespace shardkit::services::testing
