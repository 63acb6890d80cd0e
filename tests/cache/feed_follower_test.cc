// The feed follower: a cache kept fresh by the store's change feed, across restarts, through
// shard moves and without waiting for a poll.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <shardkit/cache/feed_follower.h>

#include "cache_fixture.h"

namespace shardkit::cache {
namespace {

using test_support::CacheTest;
using test_support::M;
using test_support::TextOf;

TEST_F(CacheTest, TheFeedFollowerInvalidatesWritesMadeBehindTheCachesBackAcrossRestarts) {
  Install({});
  std::string state =
      (std::filesystem::temp_directory_path() / fmt::format("shardkit-feed-{}", getpid())).string();
  std::filesystem::remove(state);
  FeedFollowerOptions options;
  options.sources = {{"entry", M(R"({"store":"changes","kind":"entry","cache":true})")}};
  options.state_path = state;
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  {
    FeedFollower follower(bus_, cache_, options);
    ASSERT_TRUE(follower.PollOnce().ok());  // starts at the feed's end
    EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
    // Another node writes straight to the store.
    ASSERT_TRUE(
        Act(R"({"store":"save","kind":"entry","cache":true,"ent":{"id":"a","text":"two"}})").ok());
    EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")),
              "one");  // stale until followed
    auto applied = follower.PollOnce();
    ASSERT_TRUE(applied.ok());
    EXPECT_EQ(*applied, 1u);
    EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "two");
  }
  // While the follower is down, another write; a new follower replays from the saved position.
  ASSERT_TRUE(
      Act(R"({"store":"save","kind":"entry","cache":true,"ent":{"id":"a","text":"three"}})").ok());
  FeedFollower restarted(bus_, cache_, options);
  auto applied = restarted.PollOnce();
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 1u);
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "three");
  std::filesystem::remove(state);
}

// Feeds in the order of a race seen under load: a split of -80 into -40 and 40-80 (epoch 2), a
// rollback (epoch 3: both point back to -80) whose marker on 40-80 is committed only after the
// follower has read 40-80, and a second split (epoch 4). The follower follows -80 from the
// rollback and past the second split before it meets 40-80's late rollback marker: that marker is
// stale. 40-80 must go on from where the second split said: not send the follower back to -80
// (its changes seen twice), not end 40-80 (its later changes lost), not read replication copies.
TEST(FeedFollowerMoves, AMarkerOfAnOlderMoveReadLateIsSkippedAndNothingIsSeenTwiceOrLost) {
  auto save = [](const char* id) {
    return fmt::format(R"({{"op":"save","kind":"item","id":"{}","version":1,"ksid":1}})", id);
  };
  auto moved = [](int epoch, const char* to) {
    return fmt::format(
        R"({{"op":"moved","kind":"","id":"","version":0,"ksid":0,"ent":{{"epoch":{},"to":{}}}}})",
        epoch, to);
  };
  // Change records by shard, sequence = index + 1; "copy-…" are replication copies no consumer
  // may read, the others client changes.
  std::map<std::string, std::vector<std::string>> feeds = {
      {"-80",
       {save("a"), moved(2, R"({"-40":2,"40-80":2})"), save("copy-b"), save("copy-c"), save("d"),
        moved(4, R"({"-40":5,"40-80":5})")}},
      {"-40", {save("copy-a1"), save("b"), moved(3, R"({"-80":5})"), save("copy-d1"), save("e")}},
      {"40-80", {save("copy-a2"), save("c")}},
  };
  std::mutex mu;
  Bus bus;
  auto changes = [&](Message m, const Context&) -> Result<Message> {
    std::lock_guard lock(mu);
    const auto& feed = feeds.at(std::string(*m.GetString("shard")));
    std::string items;
    for (uint64_t seq = std::max<uint64_t>(m.GetUint("from").value_or(1), 1); seq <= feed.size();
         ++seq) {
      std::string record = feed[seq - 1];
      record.insert(1, fmt::format(R"("seq":{},)", seq));
      items += (items.empty() ? "" : ",") + record;
    }
    Message reply;
    reply.SetArrayJson("changes", "[" + items + "]").SetUint("last", feed.size());
    return reply;
  };
  ASSERT_TRUE(bus.Add("store:changes", MakeSyncHandler(changes)).ok());
  std::string state = (std::filesystem::temp_directory_path() /
                       fmt::format("shardkit-feed-moves-{}.json", getpid()))
                          .string();
  { std::ofstream(state) << R"({"positions":{"low":1},"added":[],"retired":[]})"; }
  std::map<std::string, int> seen;
  FeedFollowerOptions options;
  options.sources = {{"low", M(R"({"store":"changes","shard":"-80"})")}};
  options.state_path = state;
  options.on_change = [&](std::string_view, std::string_view id, std::string_view, uint64_t) {
    ++seen[std::string(id)];
  };
  FeedFollower follower(bus, MakeEntityCache({}), options);
  ASSERT_TRUE(follower.PollOnce().ok());
  {
    std::lock_guard lock(mu);  // 40-80's rollback marker, its copy of d, then a client change
    auto& late = feeds["40-80"];
    late.insert(late.end(), {moved(3, R"({"-80":5})"), save("copy-d2"), save("f")});
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(follower.PollOnce().ok());

  std::map<std::string, int> expected = {{"a", 1}, {"b", 1}, {"c", 1},
                                         {"d", 1}, {"e", 1}, {"f", 1}};
  EXPECT_EQ(seen, expected);
  std::filesystem::remove(state);
  std::filesystem::remove(state + ".tmp");
}

// The follower's thread waits on long-polls: a write behind the cache's back is followed as soon
// as it is committed, long before the 10 s poll interval and wait would end.
TEST_F(CacheTest, TheFeedFollowerReactsToAWriteWithoutWaitingForAPoll) {
  Install({});
  ASSERT_TRUE(Act(R"({"store":"save","kind":"entry","ent":{"id":"a","text":"one"}})").ok());
  std::mutex mu;
  std::condition_variable seen;
  std::vector<std::string> followed;  // guarded by mu
  FeedFollowerOptions options;
  options.sources = {{"entry", M(R"({"store":"changes","kind":"entry","cache":true})")}};
  options.poll_interval_ms = 10'000;
  options.wait_ms = 10'000;
  options.on_change = [&](std::string_view, std::string_view id, std::string_view, uint64_t) {
    std::lock_guard lock(mu);
    followed.emplace_back(id);
    seen.notify_all();
  };
  FeedFollower follower(bus_, cache_, options);
  follower.Start();
  // Let the thread find the feed's end and park its long-poll.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "one");
  const auto written = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      Act(R"({"store":"save","kind":"entry","cache":true,"ent":{"id":"a","text":"two"}})").ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(seen.wait_for(lock, std::chrono::seconds(5), [&] { return !followed.empty(); }))
        << "the write was not followed within 5 s";
    EXPECT_EQ(followed, std::vector<std::string>{"a"});
  }
  EXPECT_LT(std::chrono::steady_clock::now() - written, std::chrono::seconds(5));
  EXPECT_EQ(TextOf(Act(R"({"store":"load","kind":"entry","id":"a"})")), "two");
  const auto stopping = std::chrono::steady_clock::now();
  follower.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(2))
      << "Stop waited for the long-poll";
}

}  // namespace
}  // namespace shardkit::cache
