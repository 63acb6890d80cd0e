// The Router: every specificity rule and tie-break, override/prior chains, remove, list, explain.
#include "shardkit/message/router.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "shardkit/message/codec.h"

namespace shardkit {
namespace {

using ::testing::HasSubstr;

Pattern P(std::string_view text) { return std::move(Pattern::Parse(text)).value(); }
Message M(std::string_view json) { return std::move(ParseMessage(json)).value(); }

// A handler that is never called; routes are told apart by description.
std::shared_ptr<Handler> Nop() {
  return MakeSyncHandler([](Message m, const Context&) -> Result<Message> { return m; });
}

class RouterTest : public ::testing::Test {
 protected:
  void Add(std::string_view pattern) {
    ASSERT_TRUE(router_.Add(P(pattern), Nop(), std::string(pattern)).ok());
  }
  // The pattern text of the winner for `json`, or "none".
  std::string Winner(std::string_view json) {
    auto route = router_.Find(M(json));
    return route ? route->description : "none";
  }
  Router router_;
};

TEST_F(RouterTest, NoRouteMeansNull) {
  EXPECT_EQ(Winner(R"({"a":1})"), "none");
  Add("a:2");
  EXPECT_EQ(Winner(R"({"a":1})"), "none");
}

TEST_F(RouterTest, Rule1MoreExactTermsWin) {
  Add("store:*");
  Add("store:load");
  Add("store:load,kind:entry");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "store:load,kind:entry");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"user"})"), "store:load");
  EXPECT_EQ(Winner(R"({"store":"save","kind":"user"})"), "store:*");
}

TEST_F(RouterTest, PatrunCounterExampleMoreTermsBeatAlphabeticalOrder) {
  // patrun walks properties alphabetically and picks {a:1} for {a:1,b:1,c:1}; we pick the pattern
  // with more exact terms.
  Add("a:1");
  Add("b:1,c:1");
  EXPECT_EQ(Winner(R"({"a":1,"b":1,"c":1})"), "b:1,c:1");
}

TEST_F(RouterTest, PatrunCounterExampleExactBeatsGlobOnAnEarlierName) {
  Add("a:*,b:*");
  Add("b:1");
  Add("c:1,d:1");
  EXPECT_EQ(Winner(R"({"a":1,"b":1,"c":1,"d":1})"), "c:1,d:1");
  EXPECT_EQ(Winner(R"({"a":1,"b":1})"), "b:1");
  EXPECT_EQ(Winner(R"({"a":1,"b":2})"), "a:*,b:*");
}

TEST_F(RouterTest, Rule2ThenMoreGlobTerms) {
  Add("store:load");
  Add("store:load,kind:*");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "store:load,kind:*");
  EXPECT_EQ(Winner(R"({"store":"load"})"), "store:load");
}

TEST_F(RouterTest, Rule3ThenSortedNamesSmallerFirst) {
  Add("b:1,c:*");
  Add("a:1,c:*");
  EXPECT_EQ(Winner(R"({"a":1,"b":1,"c":1})"), "a:1,c:*");
}

TEST_F(RouterTest, Rule4ThenSortedExactNamesSmallerFirst) {
  Add("a:*,b:1");
  Add("a:1,b:*");
  EXPECT_EQ(Winner(R"({"a":1,"b":1})"), "a:1,b:*");
}

TEST_F(RouterTest, Rule5ThenGlobsWithMoreLiteralCharacters) {
  Add("kind:e*");
  Add("kind:ent*");
  Add("kind:*");
  EXPECT_EQ(Winner(R"({"kind":"entry"})"), "kind:ent*");
  EXPECT_EQ(Winner(R"({"kind":"epoch"})"), "kind:e*");
  EXPECT_EQ(Winner(R"({"kind":"user"})"), "kind:*");
}

// A `*` term is matched without its glob: by the presence of a routable value (string, number or
// bool), beside exact terms and other globs of the same shape.
TEST_F(RouterTest, AStarTermNeedsARoutableValueAndYieldsToLongerGlobs) {
  Add("store:*,kind:entry");
  Add("store:l*,kind:entry");
  Add("store:*,kind:user");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "store:l*,kind:entry");
  EXPECT_EQ(Winner(R"({"store":"save","kind":"entry"})"), "store:*,kind:entry");
  EXPECT_EQ(Winner(R"({"store":7,"kind":"entry"})"), "store:*,kind:entry");
  EXPECT_EQ(Winner(R"({"store":false,"kind":"user"})"), "store:*,kind:user");
  EXPECT_EQ(Winner(R"({"store":{"op":"save"},"kind":"entry"})"), "none");
  EXPECT_EQ(Winner(R"({"store":["save"],"kind":"user"})"), "none");
  EXPECT_EQ(Winner(R"({"store":null,"kind":"entry"})"), "none");
  EXPECT_EQ(Winner(R"({"kind":"entry"})"), "none");
  EXPECT_EQ(Winner(R"({"store":"save","kind":"other"})"), "none");
}

TEST_F(RouterTest, Rule6ThenThePatternKey) {
  Add("kind:*y");
  Add("kind:e*");
  // Same shape, same number of literal characters: key order decides ("kind:~*y" < "kind:~e*").
  EXPECT_EQ(Winner(R"({"kind":"entry"})"), "kind:*y");
}

TEST_F(RouterTest, ExtraMessagePropertiesAreIgnored) {
  Add("store:load");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"x","id":1,"ent":{"store":"save"}})"), "store:load");
}

TEST_F(RouterTest, EmptyPatternIsTheLeastSpecificCatchAll) {
  Add("");
  Add("a:*");
  EXPECT_EQ(Winner(R"({"a":1})"), "a:*");
  EXPECT_EQ(Winner(R"({"z":1})"), "");
}

TEST_F(RouterTest, AddingTheSamePatternTwiceIsAConflict) {
  Add("store:load,kind:entry");
  Status s = router_.Add(P("kind:entry,store:load"), Nop());
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_THAT(s.message(), HasSubstr("already routed"));
  EXPECT_EQ(router_.size(), 1u);
}

TEST_F(RouterTest, OverrideKeepsThePriorReachableAndRemoveRestoresIt) {
  Add("store:*,kind:entry");
  ASSERT_TRUE(router_.Override(P("store:*,kind:entry"), Nop(), "cache").ok());
  ASSERT_TRUE(router_.Override(P("kind:entry,store:*"), Nop(), "audit").ok());
  auto route = router_.Find(M(R"({"store":"load","kind":"entry"})"));
  ASSERT_TRUE(route);
  EXPECT_EQ(route->description, "audit");
  ASSERT_TRUE(route->prior);
  EXPECT_EQ(route->prior->description, "cache");
  ASSERT_TRUE(route->prior->prior);
  EXPECT_EQ(route->prior->prior->description, "store:*,kind:entry");
  EXPECT_FALSE(route->prior->prior->prior);
  EXPECT_EQ(router_.size(), 1u);

  ASSERT_TRUE(router_.Remove(P("store:*,kind:entry")).ok());
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "cache");
  ASSERT_TRUE(router_.Remove(P("store:*,kind:entry")).ok());
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "store:*,kind:entry");
  ASSERT_TRUE(router_.Remove(P("store:*,kind:entry")).ok());
  EXPECT_EQ(Winner(R"({"store":"load","kind":"entry"})"), "none");
  EXPECT_EQ(router_.Remove(P("store:*,kind:entry")).code(), Code::kNotFound);
}

TEST_F(RouterTest, OverrideWithoutAPresentRouteIsAnAdd) {
  ASSERT_TRUE(router_.Override(P("a:1"), Nop(), "x").ok());
  EXPECT_FALSE(router_.Get(P("a:1"))->prior);
}

TEST_F(RouterTest, RemoveLeavesOtherRoutesIntact) {
  Add("a:1");
  Add("a:2");
  Add("a:1,b:1");
  ASSERT_TRUE(router_.Remove(P("a:1")).ok());
  EXPECT_EQ(Winner(R"({"a":1})"), "none");
  EXPECT_EQ(Winner(R"({"a":2})"), "a:2");
  EXPECT_EQ(Winner(R"({"a":1,"b":1})"), "a:1,b:1");
  EXPECT_EQ(router_.size(), 2u);
}

TEST_F(RouterTest, ListIsInSpecificityOrder) {
  Add("a:*");
  Add("a:1,b:1");
  Add("a:1");
  Add("");
  std::vector<std::string> order;
  for (const auto& r : router_.List()) order.push_back(r->description);
  EXPECT_EQ(order, (std::vector<std::string>{"a:1,b:1", "a:1", "a:*", ""}));
}

TEST_F(RouterTest, FindAllReturnsEveryMatchMostSpecificFirst) {
  Add("a:*");
  Add("a:1");
  Add("b:2");
  std::vector<std::string> order;
  for (const auto& r : router_.FindAll(M(R"({"a":1,"b":2})"))) order.push_back(r->description);
  EXPECT_EQ(order, (std::vector<std::string>{"a:1", "b:2", "a:*"}));
}

TEST_F(RouterTest, ExplainNamesTheWinnerAndWhyOthersLoseOrMiss) {
  Add("store:*");
  Add("store:load,kind:entry");
  Add("store:load,kind:user");
  Explanation e = router_.Explain(M(R"({"store":"load","kind":"entry","id":"7"})"));
  ASSERT_TRUE(e.winner);
  EXPECT_EQ(e.winner->description, "store:load,kind:entry");
  EXPECT_THAT(e.summary, HasSubstr("goes to 'store:load,kind:entry'"));
  EXPECT_THAT(e.summary, HasSubstr("more specific than 1 other"));
  ASSERT_EQ(e.candidates.size(), 3u);
  EXPECT_TRUE(e.candidates[0].matched);
  EXPECT_TRUE(e.candidates[1].matched);
  EXPECT_FALSE(e.candidates[2].matched);
  EXPECT_EQ(e.candidates[2].reason, "kind is 'entry', pattern wants 'user'");

  Explanation none = router_.Explain(M(R"({"role":"x"})"));
  EXPECT_FALSE(none.winner);
  EXPECT_THAT(none.summary, HasSubstr("no pattern matches 'role:x'"));
  EXPECT_EQ(none.candidates[0].reason, "no property 'store'");
}

TEST_F(RouterTest, ExplainAgreesWithFindOnRandomTables) {
  // Property test: the indexed Find and the exhaustive Explain pick the same route.
  std::mt19937 rng(7);
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  const std::vector<std::string> values = {"1", "2", "x*", "*", "?"};
  for (int i = 0; i < 200; ++i) {
    std::string pattern;
    for (const auto& name : names) {
      if (rng() % 2) continue;
      if (!pattern.empty()) pattern += ',';
      pattern += name + ":" + values[rng() % values.size()];
    }
    if (!router_.Get(P(pattern))) Add(pattern);
  }
  for (int i = 0; i < 500; ++i) {
    Message m;
    for (const auto& name : names) {
      if (rng() % 4 == 0) continue;
      const char* v[] = {"1", "2", "xy", "z"};
      m.SetString(name, v[rng() % 4]);
    }
    auto found = router_.Find(m);
    Explanation e = router_.Explain(m);
    EXPECT_EQ(found, e.winner) << ToJson(m);
    for (const auto& c : e.candidates) EXPECT_EQ(c.matched, c.route->pattern.Matches(m));
  }
}

TEST_F(RouterTest, CopiesAreIndependent) {
  Add("a:1");
  Router copy = router_;
  ASSERT_TRUE(copy.Add(P("a:2"), Nop(), "a:2").ok());
  EXPECT_EQ(Winner(R"({"a":2})"), "none");
  EXPECT_TRUE(copy.Find(M(R"({"a":2})")));
}

TEST_F(RouterTest, TenThousandPatternsStillFindTheRightOne) {
  for (int i = 0; i < 10000; ++i) Add("store:load,kind:k" + std::to_string(i));
  EXPECT_EQ(Winner(R"({"store":"load","kind":"k9999"})"), "store:load,kind:k9999");
  EXPECT_EQ(Winner(R"({"store":"load","kind":"k10000"})"), "none");
}

// The lookup compares a message's values with each route's encoded ones: lengths from 1 to past
// 255 bytes (the longer length encoding), values that are prefixes of each other, and groups of
// more exact terms than a lookup holds on its stack, each against Find and FindBorrowed alike.
TEST_F(RouterTest, ValuesOfEveryLengthAndManyTermsMatchExactly) {
  const std::string long_value(300, 'v');
  Add("a:x");
  Add("a:xx");
  Add("a:xxxxxxxxxxxxxxxxx");  // 17 bytes: past the two-word compare
  Add("a:" + long_value);
  Add("a:1,b:22");
  Add("a:12,b:2");
  std::string many;
  for (int i = 0; i < 10; ++i) many += (i ? "," : "") + fmt::format("t{}:{}", i, i);
  Add(many);
  auto winner_both = [&](const std::string& json) {
    const Route* borrowed = router_.FindBorrowed(M(json));
    EXPECT_EQ(borrowed, router_.Find(M(json)).get()) << json;
    return borrowed ? borrowed->description : "none";
  };
  EXPECT_EQ(winner_both(R"({"a":"x"})"), "a:x");
  EXPECT_EQ(winner_both(R"({"a":"xx"})"), "a:xx");
  EXPECT_EQ(winner_both(R"({"a":"xxx"})"), "none");
  EXPECT_EQ(winner_both(R"({"a":"xxxxxxxxxxxxxxxxx"})"), "a:xxxxxxxxxxxxxxxxx");
  EXPECT_EQ(winner_both(R"({"a":"xxxxxxxxxxxxxxxxy"})"), "none");
  EXPECT_EQ(winner_both(fmt::format(R"({{"a":"{}"}})", long_value)), "a:" + long_value);
  EXPECT_EQ(winner_both(fmt::format(R"({{"a":"{}w"}})", long_value)), "none");
  EXPECT_EQ(winner_both(fmt::format(R"({{"a":"{}"}})", long_value.substr(1))), "none");
  EXPECT_EQ(winner_both(R"({"a":1,"b":22})"), "a:1,b:22");
  EXPECT_EQ(winner_both(R"({"a":12,"b":2})"), "a:12,b:2");
  EXPECT_EQ(winner_both(R"({"a":12,"b":22})"), "none");
  std::string json = "{";
  for (int i = 0; i < 10; ++i) json += (i ? "," : "") + fmt::format(R"("t{}":"{}")", i, i);
  EXPECT_EQ(winner_both(json + "}"), many);
  EXPECT_EQ(winner_both(json.substr(0, json.size() - 3) + "\"x\"}"), "none");  // t9:x
}

}  // namespace
}  // namespace shardkit
