// The entry cache's test fixture: a store behind `store:*,kind:entry,cache:true` on a bus that
// counts its calls and can hold loads back, and the cache installed in front of it. Shared by
// cache_test.cc and feed_follower_test.cc.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <shardkit/cache/entity_cache.h>
#include <shardkit/message/bus.h>
#include <shardkit/message/clock.h>
#include <shardkit/message/codec.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

namespace shardkit::cache::test_support {

inline Message M(std::string_view json) { return std::move(ParseMessage(json)).value(); }

inline std::string TextOf(const Result<Message>& r) {
  if (!r.ok()) return "error:" + std::string(CodeName(r.status().code()));
  rapidjson::Document d;
  auto ent = r->GetObjectJson("ent").value_or("{}");
  d.Parse(ent.data(), ent.size());
  return d.HasMember("text") ? d["text"].GetString() : "";
}

// A store behind `store:*,kind:entry,cache:true` that counts calls and can hold loads back.
class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.purge_interval_ms = 0;
    store_ = std::move(store::NewMemoryStore(o)).value();
    service_ = store::MakeStoreService(store_);
    ASSERT_TRUE(bus_.Add("store:*,kind:entry,cache:true",
                         MakeHandler([this](Message m, const Context& c, ReplyFn reply) {
                           ++store_calls_;
                           if (m.GetString("store") == std::optional<std::string_view>("load") &&
                               hold_loads_) {
                             // Read now, answer later: the value is what the store held when the
                             // load ran.
                             service_->Handle(std::move(m), c, [this, reply](Result<Message> r) {
                               std::lock_guard<std::mutex> lock(mu_);
                               held_.push_back([reply, r]() { reply(r); });
                             });
                             return;
                           }
                           if (fail_next_) {
                             fail_next_ = false;
                             return reply(Status::Internal("store hiccup"));
                           }
                           service_->Handle(std::move(m), c, std::move(reply));
                         }))
                    .ok());
  }
  void Install(CacheOptions options) {
    options.clock = &clock_;
    cache_ = MakeEntityCache(options);
    ASSERT_TRUE(bus_.Add("store:*,kind:entry", cache_, "entry-cache").ok());
    ASSERT_TRUE(bus_.Add("sys:cache,cmd:stats", cache_->StatsHandler()).ok());
  }
  Result<Message> Act(std::string_view json) { return bus_.ActAndWait(M(json)); }
  // Whether the cache behind `stats` (its StatsHandler, which holds it weakly) is still alive.
  static bool Alive(const std::shared_ptr<Handler>& stats) {
    bool answered = false;
    stats->Handle(M(R"({"sys":"cache","cmd":"stats"})"), Context(nullptr, nullptr, Meta()),
                  [&](Result<Message> r) { answered = r.ok(); });
    return answered;
  }
  void Release() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    for (auto& f : held) f();
  }

  ManualClock clock_;
  std::shared_ptr<store::EntityStore> store_;
  std::shared_ptr<Handler> service_;
  std::shared_ptr<EntityCache> cache_;
  Bus bus_;
  std::atomic<int> store_calls_{0};
  bool hold_loads_ = false;
  bool fail_next_ = false;
  std::mutex mu_;
  std::vector<std::function<void()>> held_;
};

}  // namespace shardkit::cache::test_support
