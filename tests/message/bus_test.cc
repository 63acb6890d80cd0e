// The in-process bus: act, publish (sidewinder), not_found, exceptions, hops, deadlines, prior,
// atomic routing changes.
#include "shardkit/message/bus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "shardkit/message/codec.h"

namespace shardkit {
namespace {

using ::testing::HasSubstr;

Message M(std::string_view json) { return std::move(ParseMessage(json)).value(); }

// Replies with the message it received plus {"by": name}.
std::shared_ptr<Handler> Echo(std::string name) {
  return MakeSyncHandler([name](Message m, const Context&) -> Result<Message> {
    m.SetString("by", name);
    return m;
  });
}

TEST(Bus, ActReachesTheMostSpecificHandler) {
  Bus bus;
  ASSERT_TRUE(bus.Add("store:*", Echo("generic")).ok());
  ASSERT_TRUE(bus.Add("store:load,kind:entry", Echo("entry")).ok());
  auto reply = bus.ActAndWait(M(R"({"store":"load","kind":"entry","id":"1"})"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->GetString("by"), "entry");
  EXPECT_EQ(bus.ActAndWait(M(R"({"store":"save","kind":"entry"})"))->GetString("by"), "generic");
}

TEST(Bus, TheContextKeepsTheDispatchedMetadataWhateverTheHandlerDoesToItsMessage) {
  Bus bus;
  std::string origin_id, origin_trace, child_parent;
  ASSERT_TRUE(
      bus.Add("role:store", MakeHandler([&](Message m, const Context& context, ReplyFn reply) {
                const std::string id = m.meta().id;
                m.meta().trace = "rewritten";
                m.meta().id.clear();
                m = Message();  // the handler's message is gone
                origin_id = context.origin().id;
                origin_trace = context.origin().trace;
                EXPECT_EQ(origin_id, id);
                Message child = M(R"({"role":"log"})");
                context.Act(std::move(child), [&, reply](Result<Message> r) {
                  if (r.ok()) child_parent = std::string(*r->GetString("parent"));
                  reply(Message());
                });
              }))
          .ok());
  ASSERT_TRUE(bus.Add("role:log", MakeSyncHandler([](Message m, const Context&) -> Result<Message> {
                        Message out;
                        out.SetString("parent", m.meta().parent);
                        return out;
                      }))
                  .ok());
  Message request = M(R"({"role":"store","meta$":{"id":"req-1","trace":"t-1"}})");
  ASSERT_TRUE(bus.ActAndWait(std::move(request)).ok());
  EXPECT_EQ(origin_id, "req-1");
  EXPECT_EQ(origin_trace, "t-1");
  EXPECT_EQ(child_parent, "req-1");
}

TEST(Bus, UnmatchedActIsNoRouteNamingTheRoutingProperties) {
  Bus bus;
  ASSERT_TRUE(bus.Add("store:load", Echo("x")).ok());
  auto reply = bus.ActAndWait(M(R"({"role":"search","cmd":"query","q":{"text":"a"}})"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kNoRoute);
  EXPECT_THAT(reply.status().message(), HasSubstr("no handler for 'role:search,cmd:query'"));
}

TEST(Bus, AThrowingHandlerBecomesAnInternalErrorNotACrash) {
  Bus bus;
  ASSERT_TRUE(bus.Add("a:1", MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                        throw std::runtime_error("disk on fire");
                      }))
                  .ok());
  auto reply = bus.ActAndWait(M(R"({"a":1})"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInternal);
  EXPECT_THAT(reply.status().message(), HasSubstr("disk on fire"));
  // The bus keeps serving.
  ASSERT_TRUE(bus.Add("b:1", Echo("b")).ok());
  EXPECT_TRUE(bus.ActAndWait(M(R"({"b":1})")).ok());
}

TEST(Bus, RepliesCarryTheRequestIdAndMessagesGetIdsAndTraces) {
  Bus bus(BusOptions{.id_prefix = "n1"});
  Meta seen;
  ASSERT_TRUE(bus.Add("a:1", MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
                        seen = m.meta();
                        return Message();
                      }))
                  .ok());
  auto reply = bus.ActAndWait(M(R"({"a":1})"));
  ASSERT_TRUE(reply.ok());
  EXPECT_THAT(seen.id, ::testing::StartsWith("n1-"));
  EXPECT_EQ(seen.trace, seen.id);
  EXPECT_EQ(seen.hops, 1);
  EXPECT_EQ(reply->meta().id, seen.id);

  auto with_id = bus.ActAndWait(M(R"({"a":1,"meta$":{"id":"client-7","trace":"t-9"}})"));
  EXPECT_EQ(with_id->meta().id, "client-7");
  EXPECT_EQ(seen.trace, "t-9");
}

TEST(Bus, ChildMessagesInheritTraceDeadlineAndParent) {
  Bus bus;
  Meta child_meta;
  ASSERT_TRUE(bus.Add("b:1", MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
                        child_meta = m.meta();
                        return Message();
                      }))
                  .ok());
  ASSERT_TRUE(bus.Add("a:1", [](Message m, const Context& ctx,
                                ReplyFn reply) { ctx.Act(M(R"({"b":1})"), std::move(reply)); })
                  .ok());
  int64_t deadline = SystemClock::Default().NowMs() + 60'000;
  Message m = M(R"({"a":1})");
  m.meta().id = "parent-1";
  m.meta().trace = "trace-1";
  m.meta().deadline = deadline;
  ASSERT_TRUE(bus.ActAndWait(std::move(m)).ok());
  EXPECT_EQ(child_meta.trace, "trace-1");
  EXPECT_EQ(child_meta.parent, "parent-1");
  EXPECT_EQ(child_meta.deadline, deadline);
  EXPECT_EQ(child_meta.hops, 2);
  EXPECT_NE(child_meta.id, "parent-1");
}

TEST(Bus, RoutingLoopsDieAtTheHopLimit) {
  Bus bus(BusOptions{.max_hops = 8});
  int calls = 0;
  ASSERT_TRUE(bus.Add("loop:1",
                      [&](Message m, const Context& ctx, ReplyFn reply) {
                        ++calls;
                        ctx.Act(M(R"({"loop":1})"), std::move(reply));
                      })
                  .ok());
  auto reply = bus.ActAndWait(M(R"({"loop":1})"));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalid);
  EXPECT_THAT(reply.status().message(), HasSubstr("hop limit of 8 exceeded"));
  EXPECT_EQ(calls, 8);
}

TEST(Bus, PassedDeadlineAnswersTimeoutWithoutCallingTheHandler) {
  ManualClock clock(1000);
  Bus bus(BusOptions{.clock = &clock});
  int calls = 0;
  ASSERT_TRUE(bus.Add("a:1", MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
                        ++calls;
                        return m;
                      }))
                  .ok());
  Message m = M(R"({"a":1})");
  m.meta().deadline = 999;
  auto reply = bus.ActAndWait(std::move(m));
  EXPECT_EQ(reply.status().code(), Code::kTimeout);
  Message in_time = M(R"({"a":1})");
  in_time.meta().deadline = 1000;
  EXPECT_TRUE(bus.ActAndWait(std::move(in_time)).ok());
  EXPECT_EQ(calls, 1);
}

TEST(Bus, AnOverrideCallsItsPriorThroughTheContext) {
  Bus bus;
  ASSERT_TRUE(bus.Add("store:load,kind:entry", Echo("store")).ok());
  int cache_calls = 0;
  ASSERT_TRUE(bus.Override("store:load,kind:entry",
                           MakeHandler([&](Message m, const Context& ctx, ReplyFn reply) {
                             ++cache_calls;
                             ctx.Prior(std::move(m), [reply](Result<Message> r) {
                               if (r.ok()) r->SetBool("via_cache", true);
                               reply(std::move(r));
                             });
                           }))
                  .ok());
  auto reply = bus.ActAndWait(M(R"({"store":"load","kind":"entry","id":"1"})"));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->GetString("by"), "store");
  EXPECT_EQ(reply->GetBool("via_cache"), true);
  EXPECT_EQ(cache_calls, 1);
  // Removing the override restores the store alone.
  ASSERT_TRUE(bus.Remove("store:load,kind:entry").ok());
  EXPECT_FALSE(bus.ActAndWait(M(R"({"store":"load","kind":"entry"})"))->Has("via_cache"));
}

TEST(Bus, PriorWithoutAPriorIsNoRoute) {
  Bus bus;
  ASSERT_TRUE(bus.Add("a:1", [](Message m, const Context& ctx,
                                ReplyFn reply) { ctx.Prior(std::move(m), std::move(reply)); })
                  .ok());
  EXPECT_EQ(bus.ActAndWait(M(R"({"a":1})")).status().code(), Code::kNoRoute);
}

// Context::Via adds a mark to the trail of what a handler sends, without copying it before a
// message is sent: a child, a second mark after the first, and a prior's context all carry it.
TEST(Bus, ATrailMarkReachesChildrenAndThePriorsContext) {
  Bus bus;
  const std::string first = "gate 'a:1'", second = "gate 'a:2'";
  std::vector<std::string> child_via, prior_via;
  ASSERT_TRUE(bus.Add("child:1",
                      [&](Message m, const Context& ctx, ReplyFn reply) {
                        child_via = m.meta().via;
                        (void)ctx;
                        reply(Message());
                      })
                  .ok());
  ASSERT_TRUE(bus.Add("b:1",
                      [&](Message, const Context& ctx, ReplyFn reply) {
                        prior_via = ctx.origin().via;
                        reply(Message());
                      })
                  .ok());
  ASSERT_TRUE(bus.Override("b:1", MakeHandler([&](Message m, const Context& ctx, ReplyFn reply) {
                             const Context marked = ctx.Via(first).Via(second);
                             marked.Act(M(R"({"child":1})"),
                                        [&marked, m, reply](Result<Message>) mutable {
                                          marked.Prior(std::move(m), reply);
                                        });
                           }))
                  .ok());
  ASSERT_TRUE(bus.ActAndWait(M(R"({"b":1})")).ok());
  EXPECT_EQ(child_via, (std::vector<std::string>{first, second}));
  EXPECT_EQ(prior_via, (std::vector<std::string>{first, second}));
}

TEST(Bus, PublishReachesEveryMatchingObserver) {
  Bus bus;
  std::vector<std::string> seen;
  auto observer = [&](std::string name) {
    return MakeSyncHandler([&seen, name](Message m, const Context&) -> Result<Message> {
      seen.push_back(name);
      return m;
    });
  };
  ASSERT_TRUE(bus.Observe("info:entry", observer("index")).ok());
  ASSERT_TRUE(bus.Observe("info:entry", observer("fanout")).ok());
  auto other = bus.Observe("info:*", observer("audit"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(bus.Observe("info:user", observer("users")).ok());
  EXPECT_EQ(bus.Publish(M(R"({"info":"entry","ent":{"text":"hi"}})")), 3u);
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre("index", "fanout", "audit"));
  ASSERT_TRUE(bus.Unobserve(*other).ok());
  seen.clear();
  EXPECT_EQ(bus.Publish(M(R"({"info":"entry"})")), 2u);
  EXPECT_EQ(bus.Unobserve(*other).code(), Code::kNotFound);
}

TEST(Bus, AFailingObserverDoesNotStopTheOthers) {
  Bus bus;
  int ok_calls = 0;
  ASSERT_TRUE(bus.Observe("info:*", MakeSyncHandler([](Message, const Context&) -> Result<Message> {
                            throw std::runtime_error("observer bug");
                          }))
                  .ok());
  ASSERT_TRUE(
      bus.Observe("info:*", MakeSyncHandler([&](Message m, const Context&) -> Result<Message> {
                    ++ok_calls;
                    return m;
                  }))
          .ok());
  EXPECT_EQ(bus.Publish(M(R"({"info":"x"})")), 2u);
  EXPECT_EQ(ok_calls, 1);
}

TEST(Bus, BadPatternsAreRefused) {
  Bus bus;
  EXPECT_EQ(bus.Add("store:", Echo("x")).code(), Code::kInvalid);
  EXPECT_EQ(bus.Observe("a:1,a:2", Echo("x")).status().code(), Code::kInvalid);
  EXPECT_EQ(bus.routes()->size(), 0u);
}

TEST(Bus, AFailedBatchUpdateChangesNothing) {
  Bus bus;
  ASSERT_TRUE(bus.Add("a:1", Echo("a")).ok());
  Status s = bus.Update([](Router& r) {
    EXPECT_TRUE(r.Add(std::move(Pattern::Parse("b:1")).value(), Echo("b")).ok());
    return r.Add(std::move(Pattern::Parse("a:1")).value(), Echo("dup"));
  });
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(bus.routes()->size(), 1u);
  EXPECT_EQ(bus.ActAndWait(M(R"({"b":1})")).status().code(), Code::kNoRoute);
}

TEST(Bus, InFlightMessagesFinishOnTheTableTheyStartedWith) {
  Bus bus;
  ReplyFn pending;
  ASSERT_TRUE(bus.Add("slow:1",
                      [&](Message m, const Context&, ReplyFn reply) { pending = std::move(reply); })
                  .ok());
  std::optional<Result<Message>> got;
  bus.Act(M(R"({"slow":1})"), [&](Result<Message> r) { got.emplace(std::move(r)); });
  ASSERT_TRUE(bus.Remove("slow:1").ok());  // the table changes while the request is in flight
  ASSERT_TRUE(pending);
  pending(Message().SetString("done", "yes"));
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ((*got)->GetString("done"), "yes");
}

TEST(Bus, ConcurrentActsAndRoutingChangesAreSafe) {
  Bus bus;
  ASSERT_TRUE(bus.Add("a:1", Echo("a")).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread changer([&] {
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(bus.Add("b:" + std::to_string(i), Echo("b")).ok());
    }
    stop = true;
  });
  std::vector<std::thread> senders;
  for (int t = 0; t < 2; ++t) {
    senders.emplace_back([&] {
      while (!stop) {
        if (!bus.ActAndWait(M(R"({"a":1})")).ok()) ++failures;
      }
    });
  }
  changer.join();
  for (auto& s : senders) s.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(bus.routes()->size(), 201u);
}

TEST(Bus, IdsAreUniqueAcrossThreadsAndBuses) {
  // Each thread takes ids in blocks of its bus's counter; a thread that moves between two buses
  // with one prefix must still never repeat an id.
  BusOptions options;
  options.id_prefix = "p";
  Bus first(options), second(options);
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < made.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) made[t].push_back((i % 3 == 0 ? second : first).NewId());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> first_ids, second_ids;
  size_t total = 0;
  for (size_t t = 0; t < made.size(); ++t) {
    for (size_t i = 0; i < made[t].size(); ++i) {
      ++total;
      EXPECT_TRUE((i % 3 == 0 ? second_ids : first_ids).insert(made[t][i]).second) << made[t][i];
      EXPECT_TRUE(made[t][i].starts_with("p-")) << made[t][i];
    }
  }
  EXPECT_EQ(first_ids.size() + second_ids.size(), total);
}

TEST(Bus, IdsAreAlphanumericAndShortEnoughToBeHeldInPlace) {
  // Six random digits, '-', the counter: base 62, so a std::string holds the id (and a reply
  // callback its copy) without a heap block; hex ids outgrew it after 16.7 million messages.
  Bus bus, other;
  const std::regex shape("[0-9a-zA-Z]{6}-[0-9a-zA-Z]+");
  std::set<std::string> ids;
  for (int i = 0; i < 100'000; ++i) {
    std::string id = bus.NewId();
    if (i % 1000 == 0) ASSERT_TRUE(std::regex_match(id, shape)) << id;
    ASSERT_LE(id.size(), 15u) << id;
    ids.insert(std::move(id));
  }
  EXPECT_EQ(ids.size(), 100'000u);
  EXPECT_NE(bus.NewId().substr(0, 6), other.NewId().substr(0, 6));  // 1 in 5.7·10^10 to fail
}

TEST(Bus, EveryThreadSeesARoutingChangeOnceItReturnsAndOldTablesAreLetGo) {
  Bus bus;
  auto old_handler = Echo("old");
  std::weak_ptr<Handler> watch = old_handler;
  ASSERT_TRUE(bus.Add("a:1", std::move(old_handler)).ok());
  // Threads that acted on the old table, and so hold their own copy of it.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back(
        [&] { EXPECT_EQ(bus.ActAndWait(M(R"({"a":1})"))->GetString("by"), "old"); });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(bus.Update([](Router& r) {
                   if (Status s = r.Remove(*Pattern::Parse("a:1")); !s.ok()) return s;
                   return r.Add(*Pattern::Parse("a:1"), Echo("new"), "");
                 })
                  .ok());
  EXPECT_TRUE(watch.expired()) << "a replaced table is still held";
  threads.clear();
  std::atomic<int> saw_new{0};
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&] {
      if (bus.ActAndWait(M(R"({"a":1})"))->GetString("by") == "new") ++saw_new;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(saw_new, 20);
}

}  // namespace
}  // namespace shardkit
