// The shard guard's gate message (store/replication.h, store:replication gate:…): how a live
// migration coordinated from another node throws this shard's write gate.
#include <gtest/gtest.h>

#include <shardkit/message/bus.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

namespace shardkit::shard {
namespace {

// A migration coordinated from another node throws this shard's gate with store:replication
// gate:…: the guard applies it once the store accepted the message, and answers the gate's state,
// its writes in flight and the process's boot id; a bad op or version changes nothing.
TEST(ShardGuardTest, TheReplicationMessageThrowsTheGateForACoordinatorOnAnotherNode) {
  auto map = std::make_shared<ShardMapHolder>(*ShardMap::Make(1, {"-"}));
  auto gate = std::make_shared<WriteGate>();
  store::StoreOptions options;
  options.purge_interval_ms = 0;
  std::shared_ptr<store::EntityStore> s = std::move(store::NewMemoryStore(options)).value();
  Bus bus;
  ASSERT_TRUE(bus.Add("store:*", store::MakeStoreService(s), "store").ok());
  ASSERT_TRUE(bus.Override("store:*", MakeShardGuard({"-", map, nullptr, gate}), "guard").ok());
  auto throw_gate = [&](std::string_view op, int v = 1) {
    Message m;
    m.SetString("store", "replication").SetUint("v", v).SetString("shard", "-");
    m.SetString("gate", op);
    return bus.ActAndWait(std::move(m));
  };
  auto closed = throw_gate("close");
  ASSERT_TRUE(closed.ok()) << closed.status().ToString();
  EXPECT_EQ(gate->state(), WriteGate::State::kClosed);
  EXPECT_EQ(closed->GetString("gate"), std::optional<std::string_view>("closed"));
  EXPECT_EQ(closed->GetUint("in_flight"), std::optional<uint64_t>(0));
  std::string boot(closed->GetString("boot").value_or(""));
  EXPECT_EQ(boot.size(), 16u);
  auto state = throw_gate("state");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->GetString("boot"), std::optional<std::string_view>(boot));
  EXPECT_EQ(state->GetString("gate"), std::optional<std::string_view>("closed"));

  auto bad = throw_gate("open", 2);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("v: replication protocol version 2"), std::string::npos);
  EXPECT_EQ(gate->state(), WriteGate::State::kClosed) << "a refused message threw the gate";
  auto unknown = throw_gate("explode");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalid);
  EXPECT_NE(unknown.status().message().find("gate: must be one of close, open, retire, state"),
            std::string::npos)
      << unknown.status().ToString();
  EXPECT_EQ(gate->state(), WriteGate::State::kClosed);

  ASSERT_TRUE(throw_gate("retire").ok());
  EXPECT_EQ(gate->state(), WriteGate::State::kRetired);
  auto opened = throw_gate("open");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->GetString("gate"), std::optional<std::string_view>("open"));
  EXPECT_EQ(gate->state(), WriteGate::State::kOpen);
}

}  // namespace
}  // namespace shardkit::shard
