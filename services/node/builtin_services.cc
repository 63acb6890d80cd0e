#include "builtin_services.h"

#include <shared_mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "shardkit/message/json.h"

namespace shardkit::services {
namespace {

// echo: the request back, plus served_by; delay_ms / fail as documented in registry.h.
Result<ServiceInstance> MakeEcho(const ServiceContext& ctx) {
  Status known = ctx.settings.CheckOnly({"delay_ms"});
  if (!known.ok()) return known;
  auto delay = ctx.settings.GetInt("delay_ms", 0);
  if (!delay.ok()) return delay.status();
  if (*delay < 0) return ctx.settings.Error("delay_ms", "must not be negative");
  IoRuntime* runtime = &ctx.runtime;
  std::string name = ctx.name;
  int64_t default_delay = *delay;
  auto handler =
      MakeHandler([runtime, name, default_delay](Message m, const Context&, ReplyFn reply) {
        if (auto fail = m.GetString("fail")) {
          auto code = CodeFromName(*fail);
          if (code && *code != Code::kOk) {
            reply(Status(*code, fmt::format("echo was asked to fail with {}", *fail)));
            return;
          }
        }
        int64_t delay_ms = m.GetInt("delay_ms").value_or(default_delay);
        m.meta() = Meta{};
        m.SetString("served_by", name);
        if (delay_ms <= 0) {
          reply(std::move(m));
          return;
        }
        runtime->PostAfter(
            std::chrono::milliseconds(delay_ms),
            [m = std::move(m), reply = std::move(reply)]() mutable { reply(std::move(m)); });
      });
  return ServiceInstance{std::move(handler), {"role:echo"}, nullptr};
}

// kv: an in-memory map from (kind, id) to the entity's JSON text.
class KvService {
 public:
  void Put(std::string key, std::string value) {
    std::unique_lock lock(mutex_);
    map_[std::move(key)] = std::move(value);
  }
  // Sets `ent` of `reply` to the stored text, copied once, under the lock; false: no such key.
  bool LoadInto(const std::string& key, Message& reply) const {
    std::shared_lock lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    reply.SetObjectJson("ent", it->second);
    return true;
  }
  bool Erase(const std::string& key) {
    std::unique_lock lock(mutex_);
    return map_.erase(key) > 0;
  }

  Result<Message> Handle(const Message& m) {
    auto op = m.GetString("store");
    const Value* id = m.Find("id");
    if (!op) return Status::Invalid("store: must be a string (save, load or remove)");
    if (id == nullptr || !id->is_routable())
      return Status::Invalid("id: must be a string or number");
    std::string key = std::string(m.GetString("kind").value_or("")) + '\0';
    key += id->text;
    Message reply;
    reply.Set("id", *id);
    if (*op == "save") {
      auto ent = m.GetObjectJson("ent");
      if (!ent) return Status::Invalid("ent: must be an object");
      Put(std::move(key), std::string(*ent));
      reply.SetObjectJson("ent", *ent);
      return reply;
    }
    if (*op == "load") {
      if (!LoadInto(key, reply))
        return Status::NotFound(fmt::format("no entity with id '{}'", id->text));
      return reply;
    }
    if (*op == "remove") {
      reply.SetBool("removed", Erase(key));
      return reply;
    }
    return Status::Invalid(fmt::format("store: '{}' is not save, load or remove", *op));
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::string> map_;  // guarded by mutex_
};

Result<ServiceInstance> MakeKv(const ServiceContext& ctx) {
  Status known = ctx.settings.CheckOnly({"preload", "value_bytes", "kind"});
  if (!known.ok()) return known;
  auto preload = ctx.settings.GetInt("preload", 0);
  if (!preload.ok()) return preload.status();
  auto value_bytes = ctx.settings.GetInt("value_bytes", 100);
  if (!value_bytes.ok()) return value_bytes.status();
  auto kind = ctx.settings.GetString("kind", "entry");
  if (!kind.ok()) return kind.status();
  if (*preload < 0 || *preload > 10'000'000)
    return ctx.settings.Error("preload", "must be from 0 to 10000000");
  if (*value_bytes < 0 || *value_bytes > 1'000'000)
    return ctx.settings.Error("value_bytes", "must be from 0 to 1000000");
  auto kv = std::make_shared<KvService>();
  std::string value = "{\"v\":";
  AppendJsonString(std::string(static_cast<size_t>(*value_bytes), 'x'), value);
  value += '}';
  for (int64_t i = 0; i < *preload; ++i) kv->Put(*kind + '\0' + std::to_string(i), value);
  auto handler = MakeSyncHandler([kv](Message m, const Context&) { return kv->Handle(m); });
  return ServiceInstance{std::move(handler), {"store:*"}, nullptr};
}

}  // namespace

void RegisterBuiltinServices(ServiceRegistry& registry) {
  (void)registry.Register("echo", MakeEcho);
  (void)registry.Register("kv", MakeKv);
}

}  // namespace shardkit::services
