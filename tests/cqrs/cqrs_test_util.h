// Shared fixtures for the CQRS tests: temp dirs, a whole CQRS node on one bus, bounded waits.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <shardkit/cqrs/applier.h>
#include <shardkit/cqrs/command_service.h>
#include <shardkit/cqrs/entities_projection.h>
#include <shardkit/cqrs/projection_service.h>
#include <shardkit/message/bus.h>
#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/service.h>

#include "count_per_user.h"

namespace shardkit::cqrs::testing {

// A directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "shardkit-cqrs-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Sub(std::string_view name) const { return path_ + "/" + std::string(name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Waits (polling every millisecond, never longer than `limit`) until `done` holds.
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline Message Msg(std::string_view json) {
  auto m = ParseMessage(json);
  if (!m.ok()) throw std::runtime_error("bad test message: " + m.status().ToString());
  return std::move(m).value();
}

struct NodeOptions {
  store::Durability durability = store::Durability::kGroup;
  bool with_applier = true;
  bool with_projections = true;
  ApplierOptions applier;
  bool target_routed = true;  // false: the store is routed only by RouteTarget()
};

// The whole picture on one bus, for kind "entry" (and "follow"):
//   store:save|remove,kind:entry|follow  -> command service -> command log
//   store:*,kind:entry|follow,cqrs:apply -> RocksDB store (the applier's target)
//   store:load|list,kind:entry           -> entities read model
//   entries:user                         -> the count-per-user read model (count_per_user.h)
//   cqrs:status, cqrs:deadletter,cmd:*
struct Node {
  explicit Node(const std::string& dir, NodeOptions options = {}) {
    CommandLogOptions log_options;
    log_options.path = dir + "/log";
    log_options.durability = options.durability;
    log = Must(CommandLog::Open(log_options));
    store::StoreOptions store_options;
    store_options.path = dir + "/store";
    store_options.durability = options.durability;
    store_options.purge_interval_ms = 0;
    store_options.rocksdb.block_cache_bytes = size_t{8} << 20;
    store = Must(store::OpenRocksDbStore(store_options));
    auto commands = MakeCommandService(log);
    store_service = store::MakeStoreService(store);
    for (const char* kind : {"entry", "follow"}) {
      Check(bus.Add(std::string("store:save,kind:") + kind, commands));
      Check(bus.Add(std::string("store:remove,kind:") + kind, commands));
    }
    if (options.target_routed) RouteTarget();
    std::vector<std::shared_ptr<const LagSource>> lags;
    if (options.with_applier) {
      applier = Must(Applier::Start(log, bus, options.applier));
      Check(bus.Add("cqrs:deadletter,cmd:*", MakeDeadLetterService(log, applier)));
      lags.push_back(applier);
    }
    if (options.with_projections) {
      entities = StartProjection(MakeEntitiesProjection("entry"), dir + "/rm-entities",
                                 options.durability);
      per_user =
          StartProjection(MakeCountPerUserProjection(), dir + "/rm-per-user", options.durability);
      Check(bus.Add("store:load,kind:entry", entities));
      Check(bus.Add("store:list,kind:entry", entities));
      Check(bus.Add("entries:user", per_user));
      for (auto* p : {&entities, &per_user}) lags.push_back(*p);
    }
    Check(bus.Add("cqrs:status", MakeStatusService(lags)));
  }

  ~Node() {
    if (applier) applier->Stop();
    for (auto* p : {&entities, &per_user}) {
      if (*p) (*p)->Stop();
    }
  }

  std::shared_ptr<ProjectionService> StartProjection(std::unique_ptr<Projection> projection,
                                                     std::string path,
                                                     store::Durability durability) {
    ProjectionOptions options;
    options.path = std::move(path);
    options.durability = durability;
    return Must(
        ProjectionService::Start(std::move(projection), MakeCommandLogSource(log), options));
  }

  // Routes the applied commands to the store.
  void RouteTarget() {
    for (const char* kind : {"entry", "follow"})
      Check(bus.Add(std::string("store:*,kind:") + kind + ",cqrs:apply", store_service));
  }

  // Sends and waits; fails the test on an error reply.
  Message Act(std::string_view json) {
    auto reply = bus.ActAndWait(Msg(json), std::chrono::seconds(20));
    EXPECT_TRUE(reply.ok()) << json << " -> " << reply.status().ToString();
    return reply.ok() ? std::move(reply).value() : Message();
  }
  Result<Message> Try(std::string_view json) {
    return bus.ActAndWait(Msg(json), std::chrono::seconds(20));
  }

  // Everything logged so far is applied and projected.
  bool CaughtUp() const {
    const uint64_t head = log->Head();
    if (applier && applier->applied() < head) return false;
    for (auto* p : {&entities, &per_user}) {
      if (*p && (*p)->applied() < head) return false;
    }
    return true;
  }

  template <typename T>
  static T Must(Result<T> r) {
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return std::move(r).value();
  }
  static void Check(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }

  Bus bus;
  std::shared_ptr<CommandLog> log;
  std::shared_ptr<store::EntityStore> store;
  std::shared_ptr<Handler> store_service;
  std::shared_ptr<Applier> applier;
  std::shared_ptr<ProjectionService> entities, per_user;
};

}  // namespace shardkit::cqrs::testing
