// The fixture of the store:* message suite (service_test.cc): the suite runs each case against one
// store service directly, and against two shards (-80, 80-) of the same engine behind a shard
// router, the pattern a `shardkit serve` node gives a shard (services/adapters/store.cc).
// Topology and TopologyName also name the variants of store_routed_conformance.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/shard/shard_map.h>
#include <shardkit/shard/shard_router.h>
#include <shardkit/store/service.h>

#include "store_test_util.h"

namespace shardkit::store::testing {

// A backend B, served by one store (direct) or by two shards behind a router (routed).
template <typename B, bool kRoutedTopology>
struct Topology {
  using Backend = B;
  static constexpr bool kRouted = kRoutedTopology;
};

struct TopologyName {
  template <typename T>
  static std::string GetName(int) {
    return fmt::format("{}_{}", T::Backend::kName, T::kRouted ? "routed" : "direct");
  }
};

template <typename T>
class store_service : public StoreFixture<typename T::Backend> {
 protected:
  static constexpr const char* kRanges[] = {"-80", "80-"};

  void SetUp() override {
    StoreFixture<typename T::Backend>::SetUp();
    this->store_.reset();  // the fixture's own store is replaced by the topology's
    this->options_.max_value_bytes = 4096;
    if (!T::kRouted) {
      stores_.push_back(OpenAt("store"));
      ASSERT_TRUE(bus_.Add("store:*", MakeStoreService(stores_[0]), "store").ok());
      return;
    }
    auto map = std::make_shared<shard::ShardMapHolder>(
        *shard::ShardMap::Make(1, {kRanges[0], kRanges[1]}, {}));
    for (const char* range : kRanges) {
      stores_.push_back(OpenAt(range));
      auto service = MakeStoreService(stores_.back());
      auto guard = shard::MakeShardGuard({range, map, nullptr, nullptr});
      for (const std::string& pattern : {fmt::format("store:*,kind:*,shard:\"{}\"", range),
                                         fmt::format("store:changes,shard:\"{}\"", range)}) {
        ASSERT_TRUE(bus_.Add(pattern, service, fmt::format("store {}", range)).ok());
        ASSERT_TRUE(bus_.Override(pattern, guard, fmt::format("shard {}", range)).ok());
      }
    }
    ids_ = std::make_shared<IdGenerator>(1);
    ASSERT_TRUE(bus_.Add("store:*", shard::MakeShardRouter({map, nullptr, ids_}), "router").ok());
  }

  std::shared_ptr<EntityStore> OpenAt(const std::string& name) {
    this->options_.path = this->dir_.path() + "/" + name;
    auto opened = T::Backend::Open(this->options_);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::shared_ptr<EntityStore>(std::move(opened).value()) : nullptr;
  }

  Result<Message> Act(std::string_view json) {
    auto m = ParseMessage(json);
    EXPECT_TRUE(m.ok()) << json;
    return bus_.ActAndWait(std::move(m).value());
  }
  Message MustAct(std::string_view json) {
    auto r = Act(json);
    EXPECT_TRUE(r.ok()) << json << " -> " << r.status().ToString();
    return r.ok() ? std::move(r).value() : Message();
  }
  // The records written to every store of the topology.
  uint64_t Written() {
    uint64_t sum = 0;
    for (const auto& store : stores_) sum += store->feed().LastSequence();
    return sum;
  }
  // Expects `invalid` naming `field`, with nothing written and the service still serving.
  void ExpectRefused(std::string_view json, std::string_view field) {
    uint64_t before = Written();
    auto r = Act(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << r.status().ToString();
    EXPECT_TRUE(r.status().message().starts_with(field)) << json << " -> " << r.status().ToString();
    EXPECT_EQ(Written(), before) << "something was written for " << json;
    EXPECT_TRUE(Act(R"({"store":"list","kind":"ping"})").ok()) << "service stopped serving";
  }
  std::string Ent(const Message& reply) {
    return std::string(reply.GetObjectJson("ent").value_or(""));
  }

  // The shard that holds `id` ("" when direct): a feed is one shard's, so the router needs it.
  std::string ShardOf(const std::string& id) const {
    return T::kRouted ? kRanges[Ksid(id) >> 63] : "";
  }
  // `base`, or when routed the first of base, base1, base2, ... on the shard of `id`: ids whose
  // feed records must follow each other in one feed.
  std::string IdNextTo(const std::string& id, const std::string& base) const {
    std::string next = base;
    for (int i = 1; ShardOf(next) != ShardOf(id); ++i) next = fmt::format("{}{}", base, i);
    return next;
  }
  // A store:changes message with `fields` (JSON members), naming the shard of `id` when routed.
  std::string Changes(std::string_view fields, const std::string& id = "a") const {
    std::string shard = ShardOf(id);
    return fmt::format(R"({{"store":"changes",{}{}}})", fields,
                       shard.empty() ? "" : fmt::format(R"(,"shard":"{}")", shard));
  }

  Bus bus_;
  std::shared_ptr<IdGenerator> ids_;
  std::vector<std::shared_ptr<EntityStore>>
      stores_;  // the one store, or the shards' in range order
};

// Memory runs direct only: two memory shards behind a router add nothing the persistent engines
// do not cover.
using StoreServiceTopologies =
    ::testing::Types<Topology<MemoryBackend, false>, Topology<RocksDbBackend, false>,
                     Topology<RocksDbBackend, true>, Topology<SqliteBackend, false>,
                     Topology<SqliteBackend, true>>;

}  // namespace shardkit::store::testing
