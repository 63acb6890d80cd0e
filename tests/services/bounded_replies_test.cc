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

}  // namespace
}  // namespace shardkit::services::testing
