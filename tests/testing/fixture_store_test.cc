// FixtureStore: fixtures in, the whole store:* protocol out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <shardkit/testing/testing.h>

#include "test_util.h"

namespace shardkit::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr const char* kFixture = R"({
  "entry": [{"id":"1","user":"ann","text":"hi"}, {"id":"2","user":"bob","text":"yo"}, {"id":"3","user":"ann","text":"again"}],
  "user":  [{"id":"ann","name":"Ann"}]
})";

TEST(FixtureStore, ServesTheWholeStoreProtocolOverItsFixtures) {
  Bus bus;
  auto store = FixtureStore::FromJson(kFixture);
  ASSERT_TRUE(store.Register(bus).ok());

  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:2")),
              IsOkReply(HasField("ent.text", "yo"), HasField("ent.version", 1)));
  EXPECT_THAT(
      bus.ActAndWait(Msg(R"({"store":"list","kind":"entry","q":{"user":"ann","sort$":{"id":1}}})")),
      IsOkReply(HasField("items.0.id", "1"), HasField("items.1.id", "3"),
                ::testing::Not(HasField("items.2"))));
  EXPECT_THAT(
      bus.ActAndWait(Msg(R"({"store":"save","kind":"entry","ent":{"id":"2","text":"edited"}})")),
      IsOkReply(HasField("ent.version", 2)));
  EXPECT_THAT(bus.ActAndWait(Msg("store:remove,kind:entry,id:1")), IsOkReply());
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")), IsErrorReply(Code::kNotFound));
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:user,id:ann")),
              IsOkReply(HasField("ent.name", "Ann")));
  EXPECT_EQ(store.Count("entry"), 2u);
  EXPECT_THAT(store.Get("entry", "2"), Optional(HasSubstr(R"("text":"edited")")));
}

TEST(FixtureStore, EntitiesWithoutIdGetGeneratedOnes) {
  auto store = FixtureStore::FromJson(R"({"note":[{"text":"a"},{"text":"b"}]})");
  auto all = store.All("note");
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_THAT(all[0], HasSubstr(R"("id":")"));
}

TEST(FixtureStore, AMalformedFixtureFailsTheTestNamingKindAndIndex) {
  auto failures = FailuresOf([] { (void)FixtureStore::FromJson(R"({"entry":[{"id":"1"}, 42]})"); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("fixture.entry[1]: must be an object"));
  failures = FailuresOf([] { (void)FixtureStore::FromJson(R"({"entry":{"id":"1"}})"); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("fixture.entry: must be an array"));
}

TEST(FixtureStore, LoadsFromAFile) {
  auto path = std::filesystem::temp_directory_path() /
              ("shardkit-fixture-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << kFixture;
  auto store = FixtureStore::FromFile(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(store.Count("entry"), 3u);
  EXPECT_EQ(store.Count("user"), 1u);
}

TEST(FixtureStore, RegisteredUnderOneKindItLeavesOtherKindsToOtherHandlers) {
  Bus bus;
  auto store = FixtureStore::FromJson(kFixture);
  ASSERT_TRUE(store.Register(bus, "store:*,kind:entry").ok());
  MockResponder mock(bus, {.strictness = Strictness::kLenient});
  mock.On("store:*,kind:user").ReplyError(Code::kUnavailable, "users are elsewhere");
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:entry,id:1")), IsOkReply());
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:user,id:ann")), IsErrorReply(Code::kUnavailable));
}

TEST(FixtureStore, TtlsFollowTheInjectedClock) {
  ManualClock clock;
  Bus bus;
  FixtureOptions options;
  options.clock = &clock;
  FixtureStore store(options);
  ASSERT_TRUE(store.Register(bus).ok());
  ASSERT_THAT(bus.ActAndWait(Msg(R"({"store":"save","kind":"s","ttl":10,"ent":{"id":"x"}})")),
              IsOkReply());
  clock.Advance(9'999);
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:s,id:x")), IsOkReply());
  clock.Advance(1);
  EXPECT_THAT(bus.ActAndWait(Msg("store:load,kind:s,id:x")), IsErrorReply(Code::kNotFound));
}

}  // namespace
}  // namespace shardkit::testing
