// A message's properties in one block (message/include/shardkit/message/message.h): views read
// from a message stay valid while it grows, moves and is copied; values may come from the message
// itself; shared blocks are copied on write; metadata survives moves and copies.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "shardkit/message/codec.h"
#include "shardkit/message/message.h"

namespace shardkit {
namespace {

Message MustParse(std::string_view json) {
  auto m = ParseMessage(json);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : Message();
}

TEST(MessageBlock, ViewsStayValidWhileTheMessageGrowsAndMoves) {
  Message m = MustParse(R"({"kind":"entry","ent":{"text":"first"}})");
  const std::string_view kind = *m.GetString("kind");
  const std::string_view ent = *m.GetObjectJson("ent");
  const Value* first = m.Find("kind");
  // Past the parsed block's room for properties and for text, many times over.
  for (int i = 0; i < 200; ++i)
    m.SetString("p" + std::to_string(i), std::string(100, 'a' + i % 26));
  Message moved = std::move(m);
  EXPECT_EQ(kind, "entry");
  EXPECT_EQ(ent, R"({"text":"first"})");
  EXPECT_EQ(first->text, "entry");
  ASSERT_EQ(moved.size(), 202u);
  EXPECT_EQ(moved.properties()[0].name, "kind");
  EXPECT_EQ(*moved.GetString("p199"), std::string(100, 'a' + 199 % 26));
  EXPECT_EQ(MustParse(ToJson(moved)), moved);
}

TEST(MessageBlock, ManyPropertiesParseInOrder) {
  std::string text = "{";
  for (int i = 0; i < 100; ++i) text += (i ? "," : "") + fmt::format(R"("k{}":{})", i, i);
  text += "}";
  Message m = MustParse(text);
  ASSERT_EQ(m.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(m.properties()[i].name, "k" + std::to_string(i));
    EXPECT_EQ(m.GetInt("k" + std::to_string(i)), i);
  }
  EXPECT_EQ(ToJson(m), text);
}

TEST(MessageBlock, ValuesMayBeViewsIntoTheSameMessage) {
  Message m;
  m.SetString("a", "a fairly long value that is not held in place").SetString("b", "short");
  m.SetString("c", *m.GetString("a"));               // appended from itself
  m.SetString("b", *m.GetString("a"));               // longer than the value it replaces
  m.SetString("a", m.GetString("a")->substr(2, 6));  // shorter: overwritten in place
  EXPECT_EQ(m.GetString("a"), "fairly");
  EXPECT_EQ(m.GetString("b"), "a fairly long value that is not held in place");
  EXPECT_EQ(m.GetString("c"), "a fairly long value that is not held in place");
  EXPECT_TRUE(m.Remove("b"));
  EXPECT_EQ(ToJson(m), R"({"a":"fairly","c":"a fairly long value that is not held in place"})");
}

TEST(MessageBlock, AWriteToASharedMessageCopiesAndKeepsEarlierViews) {
  Message shared = MustParse(R"({"store":"load","id":"42"})");
  shared.Share();
  Message copy = shared;
  const std::string_view id = *copy.GetString("id");
  copy.SetString("id", *copy.GetString("store"));  // first write: a private copy
  shared = Message();                              // the other holder lets go
  EXPECT_EQ(id, "42");
  EXPECT_EQ(copy.GetString("id"), "load");
  EXPECT_FALSE(copy.shared());
}

TEST(MessageBlock, PropertiesOnlyCopiesNoMetadataAndSharesASharedBlock) {
  Message answer = MustParse(R"({"ent":{"a":1},"version":3})");
  answer.meta().id = "id-1";
  answer.meta().hops = 2;
  answer.Share();
  const Message kept = answer.PropertiesOnly();
  EXPECT_TRUE(kept.meta().empty());
  EXPECT_EQ(kept.properties(), answer.properties());
  EXPECT_EQ(&kept.properties(), &answer.properties());  // one block, shared
  EXPECT_TRUE(kept.shared());
  EXPECT_EQ(answer.meta().id, "id-1");  // the source keeps its own
  // A private block is copied: a write to the copy leaves the source as it was.
  Message built;
  built.SetString("kind", "entry");
  built.meta().trace = "t";
  Message copy = built.PropertiesOnly();
  EXPECT_NE(&copy.properties(), &built.properties());
  copy.SetString("kind", "other");
  EXPECT_EQ(built.GetString("kind"), "entry");
  EXPECT_TRUE(copy.meta().empty());
  EXPECT_TRUE(Message().PropertiesOnly().empty());
}

TEST(MessageBlock, MetadataFollowsMovesAndCopiesAndStartsEmpty) {
  Message m = MustParse(R"({"a":1})");
  m.meta().id = "id-1";
  m.meta().trace = std::string(100, 't');  // not held in place
  m.meta().via = {"r1"};
  Message copy = m;
  Message moved = std::move(m);
  EXPECT_EQ(moved.meta().id, "id-1");
  EXPECT_EQ(copy.meta().trace, std::string(100, 't'));
  EXPECT_EQ(copy.meta().via, std::vector<std::string>{"r1"});
  moved = Message();
  copy = Message();
  // Metadata a message got back from the pool starts empty.
  for (int i = 0; i < 200; ++i) {
    Message fresh;
    EXPECT_TRUE(fresh.meta().empty());
    EXPECT_TRUE(fresh.meta().via.empty());
    fresh.meta().idempotency_key = "k";
  }
}

TEST(MessageBlock, SharedMetadataStaysWhatItWasWhenShared) {
  Message m = MustParse(R"({"a":1})");
  m.meta().id = "id-1";
  m.meta().trace = std::string(100, 't');
  MetaRef held = m.ShareMeta();
  EXPECT_EQ(&*held, &std::as_const(m).meta());  // shared, not copied
  // A write through the message takes a copy: the holder keeps what was shared.
  m.meta().id = "id-2";
  m.meta().via.push_back("r1");
  EXPECT_EQ(held->id, "id-1");
  EXPECT_TRUE(held->via.empty());
  EXPECT_EQ(m.meta().id, "id-2");
  EXPECT_EQ(m.meta().trace, std::string(100, 't'));
  // Each outlives the other.
  MetaRef copy = held;
  m = Message();
  held = MetaRef();
  EXPECT_EQ(copy->id, "id-1");
  MetaRef none;
  EXPECT_TRUE(none->empty());
  Message n;
  n.meta().id = "id-3";
  { MetaRef brief = n.ShareMeta(); }
  n.meta().hops = 2;  // the only holder again: written in place
  EXPECT_EQ(n.meta().id, "id-3");
  EXPECT_EQ(n.meta().hops, 2);
}

TEST(MessageBlock, SharedMetadataOutlivesItsMessageOnAnotherThread) {
  std::vector<MetaRef> held;
  for (int i = 0; i < 100; ++i) {
    Message m;
    m.meta().id = fmt::format("id-{}", i);
    held.push_back(m.ShareMeta());
  }
  std::vector<std::string> seen;
  std::thread reader([&] {
    for (const MetaRef& ref : held) seen.push_back(ref->id);
    held.clear();  // the last holders, on this thread
  });
  reader.join();
  ASSERT_EQ(seen.size(), 100u);
  EXPECT_EQ(seen.front(), "id-0");
  EXPECT_EQ(seen.back(), "id-99");
}

}  // namespace
}  // namespace shardkit
