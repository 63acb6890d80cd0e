// ReplyFn: a reply callback holding a small callable in place, a large one on the heap; copies,
// moves and destruction of the callable; the request id a reply is stamped with.
#include <gtest/gtest.h>

#include <array>
#include <functional>

#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"

namespace shardkit {
namespace {

Message M(std::string_view json) { return std::move(ParseMessage(json)).value(); }

// A callable of `kBytes` that records where it lives when called and counts its live instances.
template <size_t kBytes>
struct Probe {
  static_assert(kBytes >= 2 * sizeof(void*));
  const void** where;
  int* live;
  std::array<char, kBytes - 2 * sizeof(void*)> padding{};
  Probe(const void** w, int* l) : where(w), live(l) { ++*live; }
  Probe(const Probe& o) : where(o.where), live(o.live), padding(o.padding) { ++*live; }
  Probe(Probe&& o) noexcept : where(o.where), live(o.live), padding(o.padding) { ++*live; }
  ~Probe() { --*live; }
  void operator()(Result<Message>) const { *where = this; }
};

bool Inside(const void* p, const ReplyFn& fn) {
  auto* begin = reinterpret_cast<const char*>(&fn);
  return p >= begin && p < begin + sizeof(fn);
}

TEST(ReplyFn, HoldsACallableOfSixtyFourBytesInPlace) {
  const void* where = nullptr;
  int live = 0;
  {
    ReplyFn fn = Probe<64>(&where, &live);
    fn(Message());
    EXPECT_TRUE(Inside(where, fn)) << "the callable of 64 bytes lives outside the callback";
    ReplyFn moved = std::move(fn);
    moved(Message());
    EXPECT_TRUE(Inside(where, moved)) << "a moved callback calls a callable outside itself";
    ReplyFn copy = moved;
    copy(Message());
    EXPECT_TRUE(Inside(where, copy));
    EXPECT_EQ(live, 2);  // the moved-from callback holds none
  }
  EXPECT_EQ(live, 0);
}

TEST(ReplyFn, HoldsALargerCallableOnTheHeap) {
  const void* where = nullptr;
  int live = 0;
  {
    ReplyFn fn = Probe<256>(&where, &live);
    fn(Message());
    EXPECT_FALSE(Inside(where, fn));
    const void* first = where;
    ReplyFn moved = std::move(fn);  // takes the same heap object
    moved(Message());
    EXPECT_EQ(where, first);
    ReplyFn copy = moved;
    copy(Message());
    EXPECT_NE(where, first);
    EXPECT_EQ(live, 2);
    copy = nullptr;
    EXPECT_EQ(live, 1);
    EXPECT_FALSE(copy);
  }
  EXPECT_EQ(live, 0);
}

TEST(ReplyFn, AnEmptyCallbackIsFalseAndThrowsWhenCalled) {
  ReplyFn none;
  EXPECT_FALSE(none);
  EXPECT_TRUE(none == nullptr);
  EXPECT_THROW(none(Message()), std::bad_function_call);
  ReplyFn from_empty = std::function<void(Result<Message>)>();
  EXPECT_FALSE(from_empty);
  void (*no_function)(Result<Message>) = nullptr;
  EXPECT_FALSE(ReplyFn(no_function));
}

TEST(ReplyFn, StampsTheIdOfTheRequestItAnswersOnSuccessOnly) {
  std::vector<Result<Message>> got;
  ReplyFn fn = [&got](Result<Message> r) { got.push_back(std::move(r)); };
  fn.AnswerTo("outer");
  fn.AnswerTo("inner");  // already answering a request: keeps the first id
  fn(Message());
  fn(Status::NotFound("gone"));
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[0].ok());
  EXPECT_EQ(got[0]->meta().id, "outer");
  EXPECT_EQ(got[1].status().code(), Code::kNotFound);
}

// A handler that hands its own reply callback on to a further act: its caller still gets the id of
// the request it sent, as with a wrapper per act.
TEST(ReplyFn, AForwardedReplyCarriesTheOuterRequestsId) {
  Bus bus;
  ASSERT_TRUE(bus.Add("role:inner",
                      [](Message, const Context&, ReplyFn reply) { reply(M(R"({"ok":true})")); })
                  .ok());
  ASSERT_TRUE(bus.Add("role:outer",
                      [](Message, const Context& context, ReplyFn reply) {
                        context.Act(M(R"({"role":"inner"})"), std::move(reply));
                      })
                  .ok());
  Message request = M(R"({"role":"outer"})");
  request.meta().id = "req-1";
  auto reply = bus.ActAndWait(std::move(request));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->meta().id, "req-1");
  EXPECT_EQ(reply->GetBool("ok"), true);
}

// A moved message keeps every metadata field (the move skips only the empty ones).
TEST(ReplyFn, AMovedMessageKeepsItsMetadata) {
  Message m = M(R"({"a":1,"ent":{"x":"y"}})");
  Meta& meta = m.meta();
  meta.id = "i";
  meta.trace = "a trace longer than the small-string buffer";
  meta.parent = "p";
  meta.deadline = 7;
  meta.hops = 3;
  meta.idempotency_key = "k";
  meta.via = {"v1", "v2"};
  const Message expected = m;
  Message moved = std::move(m);
  EXPECT_EQ(moved, expected);
  Message partial;
  partial.meta().trace = "t";
  Message moved_partial = std::move(partial);
  EXPECT_EQ(moved_partial.meta().trace, "t");
  EXPECT_TRUE(moved_partial.meta().id.empty());
  EXPECT_EQ(moved_partial.meta().hops, 0);
}

}  // namespace
}  // namespace shardkit
