// The checker itself must be right before it can judge the migration: histories that are and are
// not linearizable, including unknown outcomes.
#include "linearizability.h"

#include <gtest/gtest.h>

#include <random>

namespace shardkit::migrate::testing {
namespace {

using Kind = RegisterOp::Kind;
constexpr int64_t kNever = RegisterOp::kUnknown;

RegisterOp Save(std::string v, int64_t call, int64_t ret) { return {Kind::kSave, call, ret, v}; }
RegisterOp Load(std::optional<std::string> v, int64_t call, int64_t ret) {
  return {Kind::kLoad, call, ret, std::move(v)};
}
RegisterOp Remove(int64_t call, int64_t ret) { return {Kind::kRemove, call, ret, std::nullopt}; }

TEST(Linearizability, ASequentialHistoryThatReadsItsWritesPasses) {
  auto r = CheckRegister({Save("a", 0, 1), Load("a", 2, 3), Save("b", 4, 5), Load("b", 6, 7)},
                         std::nullopt);
  EXPECT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.operations, 4u);
}

TEST(Linearizability, AStaleReadAfterANewerWriteReturnedFails) {
  auto r = CheckRegister({Save("a", 0, 1), Save("b", 2, 3), Load("a", 4, 5)}, std::nullopt);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.explanation.find("load->(a) [4, 5]"), std::string::npos) << r.explanation;
}

TEST(Linearizability, AReadConcurrentWithAWriteMaySeeEitherValue) {
  EXPECT_TRUE(CheckRegister({Save("a", 0, 1), Save("b", 2, 10), Load("a", 3, 4)}, {}).ok);
  EXPECT_TRUE(CheckRegister({Save("a", 0, 1), Save("b", 2, 10), Load("b", 3, 4)}, {}).ok);
  // …but once one reader saw the new value, a later reader cannot see the old one.
  EXPECT_FALSE(
      CheckRegister({Save("a", 0, 1), Save("b", 2, 10), Load("b", 3, 4), Load("a", 5, 6)}, {}).ok);
}

TEST(Linearizability, AReadOfAValueNeverWrittenFails) {
  EXPECT_FALSE(CheckRegister({Save("a", 0, 1), Load("z", 2, 3)}, std::nullopt).ok);
  EXPECT_FALSE(CheckRegister({Load("a", 0, 1)}, std::nullopt).ok);
  EXPECT_TRUE(CheckRegister({Load("a", 0, 1)}, std::string("a")).ok);
}

TEST(Linearizability, RemovesMakeTheKeyAbsent) {
  EXPECT_TRUE(
      CheckRegister({Save("a", 0, 1), Remove(2, 3), Load(std::nullopt, 4, 5)}, std::nullopt).ok);
  EXPECT_FALSE(CheckRegister({Save("a", 0, 1), Remove(2, 3), Load("a", 4, 5)}, std::nullopt).ok);
  // A lost write: acknowledged, then the key reads absent with no remove.
  EXPECT_FALSE(CheckRegister({Save("a", 0, 1), Load(std::nullopt, 2, 3)}, std::nullopt).ok);
}

TEST(Linearizability, AWriteWithAnUnknownOutcomeMayOrMayNotHaveHappened) {
  // Never happened, as far as anyone saw.
  EXPECT_TRUE(CheckRegister({Save("a", 0, 1), Save("b", 2, kNever), Load("a", 3, 4)}, {}).ok);
  // Happened: visible later.
  EXPECT_TRUE(CheckRegister({Save("a", 0, 1), Save("b", 2, kNever), Load("b", 9, 10)}, {}).ok);
  // Happened, then un-happened: impossible.
  EXPECT_FALSE(
      CheckRegister({Save("a", 0, 1), Save("b", 2, kNever), Load("b", 3, 4), Load("a", 5, 6)}, {})
          .ok);
  // Cannot have taken effect before it was called.
  EXPECT_FALSE(CheckRegister({Save("a", 0, 1), Load("b", 2, 3), Save("b", 4, kNever)}, {}).ok);
  // Loads with unknown outcomes are dropped.
  auto r = CheckRegister({Save("a", 0, 1), Load("zzz", 2, kNever)}, {});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.operations, 1u);
}

// A node that was down: hundreds of writes with unknown outcomes on one key, none of them seen by
// anyone. They are dropped (placed "never" they change no verdict), so the search stays small —
// kept, it is exponential in their number. Observed ones are kept and still judged.
TEST(Linearizability, ManyUnobservedUnknownWritesAreDroppedAndObservedOnesStillCount) {
  std::vector<RegisterOp> history = {Save("a", 0, 1)};
  for (int i = 0; i < 300; ++i) {
    history.push_back(Save("lost" + std::to_string(i), 10 + i, kNever));
    if (i % 10 == 0) history.push_back(Remove(10 + i, kNever));
  }
  history.push_back(Save("seen", 400, kNever));
  history.push_back(Load("a", 320, 330));
  history.push_back(Load("seen", 500, 510));
  auto r = CheckRegister(history, {});
  EXPECT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.operations, 4u);  // a, seen, and the two loads
  EXPECT_LT(r.states_explored, 100u);
  // The kept unknown write is still judged: seen, then a stale value, is not linearizable.
  history.push_back(Load("a", 600, 610));
  EXPECT_FALSE(CheckRegister(history, {}).ok);
  // An unknown remove that a later load of absence may explain is kept.
  auto absent = CheckRegister({Save("a", 0, 1), Remove(2, kNever), Load(std::nullopt, 5, 6)}, {});
  EXPECT_TRUE(absent.ok) << absent.explanation;
  EXPECT_EQ(absent.operations, 3u);
  // A lost write stays lost when the only unknown remove came after the load of absence.
  EXPECT_FALSE(
      CheckRegister({Save("a", 0, 1), Load(std::nullopt, 2, 3), Remove(5, kNever)}, {}).ok);
}

TEST(Linearizability, ASearchOverItsStateBudgetGivesUpSayingSo) {
  std::vector<RegisterOp> history;
  for (int i = 0; i < 20; ++i) history.push_back(Save("v" + std::to_string(i), i, 100));
  history.push_back(Load("v7", 200, 201));
  auto r = CheckRegister(history, {}, 50);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.explanation.find("gave up after 50 states"), std::string::npos) << r.explanation;
  EXPECT_TRUE(CheckRegister(history, {}).ok);
}

// A long history from a simulated register with concurrent clients is linearizable; corrupting
// one read in it makes it fail. Also keeps the search fast on a realistic size.
TEST(Linearizability, ASimulatedConcurrentRegisterPassesAndOneCorruptedReadFails) {
  std::mt19937 rng(7);
  std::vector<RegisterOp> history;
  std::optional<std::string> value;
  int64_t now = 0;
  // Each op is linearised at a point inside [call, ret]; overlapping windows are generated by
  // choosing call and ret around the linearisation instant.
  for (int i = 0; i < 400; ++i) {
    now += 10;
    int64_t call = now - static_cast<int64_t>(rng() % 25), ret = now + rng() % 25;
    int pick = static_cast<int>(rng() % 10);
    if (pick < 4) {
      value = std::string("v").append(std::to_string(i));
      history.push_back(Save(*value, call, ret));
    } else if (pick == 4) {
      value.reset();
      history.push_back(Remove(call, ret));
    } else {
      history.push_back(Load(value, call, ret));
    }
  }
  auto r = CheckRegister(history, std::nullopt);
  EXPECT_TRUE(r.ok) << r.explanation;
  EXPECT_EQ(r.operations, 400u);
  for (auto& op : history) {
    if (op.kind == Kind::kLoad && op.value && op.call > 2000) {
      op.value = "never-written";
      break;
    }
  }
  EXPECT_FALSE(CheckRegister(history, std::nullopt).ok);
}

}  // namespace
}  // namespace shardkit::migrate::testing
