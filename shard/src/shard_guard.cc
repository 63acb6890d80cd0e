// The shard guard: refuses messages routed with a stale map or to the wrong range, and passes a
// shard's writes through its write gate. A decorator: installed as an override of the shard's
// routes, it reaches the store it guards with Context::Prior.
#include <fmt/format.h>

#include <random>

#include <shardkit/message/crash_point.h>
#include <shardkit/message/json.h>
#include <shardkit/shard/shard_router.h>

#include "shard_key.h"

namespace shardkit::shard {
namespace {

using MapPtr = std::shared_ptr<const ShardMap>;

class ShardGuard final : public Handler {
 public:
  explicit ShardGuard(ShardGuardOptions options) : options_(std::move(options)) {}

  void Handle(Message message, const Context& context, ReplyFn reply) override {
    MapPtr map = options_.map->Current();
    if (auto epoch = message.GetUint("epoch"); epoch && *epoch > map->epoch() && options_.refresh) {
      if (auto fresh = options_.refresh(); fresh.ok() && fresh->epoch() > map->epoch()) {
        (void)options_.map->CompareAndSwap(map->epoch(), std::move(fresh).value());
        map = options_.map->Current();
      }
    }
    const Shard* mine = map->Find(options_.shard);
    auto refuse = [&](std::string why) {
      reply(Status::WrongShard(
          fmt::format("shard {}: {}", options_.shard, why),
          JsonObject().Add("epoch", map->epoch()).Add("shard", options_.shard).str()));
    };
    // A shard's feed stays readable after its range moved: its consumers read up to the move
    // marker there, then follow it to the new owners (store/change_feed.h, kMoved).
    // So do the replication messages of a migration (store/replication.h): they fill a target
    // the map does not route to yet, or read its state, and never pass the write gate.
    auto store_op = message.GetString("store");
    if (store_op == std::optional<std::string_view>("changes") ||
        store_op == std::optional<std::string_view>("replicate") ||
        store_op == std::optional<std::string_view>("replication")) {
      message.Remove("shard");
      message.Remove("epoch");
      if (store_op == std::optional<std::string_view>("replication") && message.Has("gate"))
        return ServeGate(std::move(message), context, std::move(reply));
      context.Prior(std::move(message), std::move(reply));
      return;
    }
    if (mine == nullptr)
      return refuse(fmt::format("this range is not in the shard map of epoch {}", map->epoch()));
    if (auto epoch = message.GetUint("epoch"); epoch && *epoch != map->epoch()) {
      return refuse(fmt::format("message routed with epoch {}, the shard map is at epoch {}",
                                *epoch, map->epoch()));
    }
    auto ksid = internal::MessageKsid(message, *map);
    if (!ksid.ok()) return reply(std::move(ksid).status());
    if (*ksid && !mine->range.Contains(**ksid)) {
      return refuse(fmt::format("key with ksid {:016x} is outside the range", **ksid));
    }
    if (!*ksid && message.GetString("store") == std::optional<std::string_view>("save") &&
        !message.Has("ents") && !(mine->range.begin == 0 && mine->range.end == 0) &&
        map->ShardKeyOf(message.GetString("kind").value_or("")) == "id") {
      return refuse("a save without an id must go through the shard router");
    }
    message.Remove("shard");
    message.Remove("epoch");
    auto op = message.GetString("store");
    bool write = op && (*op == "save" || *op == "remove");
    if (!write || !options_.gate) {
      context.Prior(std::move(message), std::move(reply));
      return;
    }
    std::string shard = options_.shard;
    auto holder = options_.map;
    options_.gate->Admit(
        [message, context, reply](std::function<void()> done) {
          context.Prior(message, [reply, done](Result<Message> r) {
            done();
            reply(std::move(r));
          });
        },
        [reply, shard, holder] {
          reply(Status::WrongShard(
              fmt::format("shard {}: the range has moved", shard),
              JsonObject().Add("epoch", holder->Current()->epoch()).Add("shard", shard).str()));
        });
  }

 private:
  // store:replication gate:"close"|"open"|"retire"|"state": a migration coordinating from another
  // node throws this shard's write gate (a rollback closes a remote target's gate). Applied once
  // the store has accepted the message (its protocol version); the reply adds the gate's state,
  // its writes in flight and this process's boot id, so the coordinator sees a restarted node
  // (whose gate is open again) as such.
  void ServeGate(Message message, const Context& context, ReplyFn reply) {
    auto op = message.GetString("gate");
    std::string wanted(op.value_or(""));
    if (wanted != "close" && wanted != "open" && wanted != "retire" && wanted != "state") {
      return reply(Status::InvalidField("gate", "must be one of close, open, retire, state"));
    }
    if (!options_.gate) {
      return reply(Status::InvalidField(
          "gate", fmt::format("shard {} has no write gate in this node", options_.shard)));
    }
    message.Remove("gate");
    context.Prior(std::move(message), [gate = options_.gate, wanted,
                                       reply = std::move(reply)](Result<Message> r) {
      if (!r.ok()) return reply(std::move(r));
      if (wanted == "close") gate->Close();
      if (wanted == "open") gate->Open();
      if (wanted == "retire") {
        CrashPoint("gate:retiring");  // a rollback past its map swap, before the gate retires
        gate->Retire();
      }
      if (wanted == "close") CrashPoint("gate:closed");  // writes held, the close not answered
      static const char* kNames[] = {"open", "closed", "retired"};
      r->SetString("gate", kNames[static_cast<int>(gate->state())]);
      r->SetUint("in_flight", gate->in_flight());
      r->SetString("boot", BootId());
      reply(std::move(r));
    });
  }

  // Random per process: a gate closed before a restart is open after it.
  static const std::string& BootId() {
    static const std::string id = [] {
      std::random_device random;
      return fmt::format("{:08x}{:08x}", random(), random());
    }();
    return id;
  }

  ShardGuardOptions options_;
};

}  // namespace

std::shared_ptr<Handler> MakeShardGuard(ShardGuardOptions options) {
  return std::make_shared<ShardGuard>(std::move(options));
}

}  // namespace shardkit::shard
