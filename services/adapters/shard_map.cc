// shard-map: a node's shard map, authoritative (ranges, epoch, an optional file that keeps it
// across restarts) or a follower of another node's (`from`). Answers shardmap:get|set.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "adapters.h"
#include "shardkit/message/file.h"
#include "shardkit/message/json.h"
#include "shardkit/services/client.h"
#include "shardkit/services/runtime.h"
#include "shardkit/store/scheduler.h"

namespace shardkit::services {
namespace {

std::vector<std::string> ShardNames(const shard::ShardMap& map) {
  std::vector<std::string> names;
  for (const auto& shard : map.shards()) names.push_back(shard.name);
  return names;
}

// The reply to shardmap:get: {"epoch":E,"ranges":[…],"shard_keys":{kind:field}}.
Message DescribeMap(const shard::ShardMap& map) {
  Message out;
  out.SetUint("epoch", map.epoch());
  out.SetArrayJson("ranges", JsonStringArray(ShardNames(map)));
  JsonObject keys;
  for (const auto& [kind, field] : map.shard_keys()) keys.Add(kind, field);
  out.SetObjectJson("shard_keys", keys.str());
  return out;
}

// Parses a shardmap:get reply back into a map.
Result<shard::ShardMap> MapFromReply(const Message& reply) {
  auto epoch = reply.GetUint("epoch");
  auto ranges_json = reply.GetArrayJson("ranges");
  if (!epoch || !ranges_json) return Status::Internal("the shard map reply has no epoch or ranges");
  auto ranges = ParseJson(*ranges_json, "ranges");
  if (!ranges.ok()) return ranges.status();
  std::vector<std::string> names;
  for (const auto& r : ranges->GetArray()) {
    if (r.IsString()) names.emplace_back(r.GetString());
  }
  std::map<std::string, std::string> keys;
  if (auto keys_json = reply.GetObjectJson("shard_keys")) {
    auto doc = ParseJson(*keys_json, "shard_keys");
    if (!doc.ok()) return doc.status();
    for (const auto& m : doc->GetObject()) {
      if (m.value.IsString()) keys[m.name.GetString()] = m.value.GetString();
    }
  }
  return shard::ShardMap::Make(*epoch, names, keys);
}

// Adopts `map` when its epoch is newer than the holder's.
Status Adopt(shard::ShardMapHolder& holder, Result<shard::ShardMap> map) {
  if (!map.ok()) return map.status();
  auto current = holder.Current();
  if (map->epoch() > current->epoch()) {
    return holder.CompareAndSwap(current->epoch(), std::move(map).value());
  }
  return Status::Ok();
}

// A follower's long-poll waits at most this long (under a node's default request timeout).
constexpr int64_t kFollowWaitMs = 20'000;
// An authority keeps a shardmap:get with wait_ms open at most this long.
constexpr int64_t kMaxMapWaitMs = 60'000;

// A follower's long-poll of its authority, shared with the replies in flight (a reply may come
// after the follower stopped: its run number is then old and it does nothing).
struct FollowState {
  std::shared_ptr<shard::ShardMapHolder> holder;
  std::weak_ptr<Handler> client;  // the follower owns it
  std::string name;
  int64_t pause_ms = 0;  // after an error, or an authority that does not wait
  std::mutex mu;
  uint64_t run = 0;                         // guarded by mu: 0 while stopped
  int quick = 0;                            // guarded by mu: quick answers with nothing newer
  store::Scheduler::TaskId pause_task = 0;  // guarded by mu
};

// Sends `shardmap:get,after_epoch:<ours>,wait_ms` unless run `run` has stopped. The authority
// answers when its epoch passes ours, or after the wait with the same map; either way the next
// long-poll follows at once. An error, or two quick answers in a row with nothing newer (a build
// without long-polls), wait pause_ms first.
void Follow(const std::shared_ptr<FollowState>& st, uint64_t run) {
  auto client = st->client.lock();
  if (!client) return;
  {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->run != run) return;
  }
  const uint64_t ours = st->holder->Current()->epoch();
  const int64_t wait_ms = std::min(st->pause_ms, kFollowWaitMs);
  Message get;
  get.SetString("shardmap", "get").SetString("map", st->name);
  get.SetUint("after_epoch", ours).SetInt("wait_ms", wait_ms);
  get.meta().deadline = SystemClock::Default().NowMs() + wait_ms + 5'000;
  auto sent = std::chrono::steady_clock::now();
  Context context(nullptr, nullptr, get.meta());
  client->Handle(std::move(get), context, [st, run, ours, wait_ms, sent](Result<Message> reply) {
    bool newer = false;
    if (reply.ok()) {
      auto map = MapFromReply(*reply);
      newer = map.ok() && map->epoch() > ours;
      (void)Adopt(*st->holder, std::move(map));  // a failed adoption keeps the current map
    }
    bool waited = std::chrono::steady_clock::now() - sent >= std::chrono::milliseconds(wait_ms / 2);
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (st->run != run) return;
      // One quick answer with nothing newer may be a reload or a stop of the authority; a
      // second in a row is an authority that does not wait.
      st->quick = !reply.ok() ? 2 : newer || waited ? 0 : st->quick + 1;
      if (st->quick >= 2) {
        st->quick = 0;
        st->pause_task = store::Scheduler::Shared().After(std::chrono::milliseconds(st->pause_ms),
                                                          [st, run] { Follow(st, run); });
        return;
      }
    }
    Follow(st, run);
  });
}

// shard-map with `from`: a follower of another node's authoritative map. It fetches the map at
// start (waiting up to connect_timeout_ms for the authority), again whenever a router or guard of
// this node meets a newer epoch (at most once per 20 ms), and in the background keeps one
// long-poll open (Follow), so a change on the authority is adopted at once. It answers
// shardmap:get with its copy; shardmap:set must go to the authority.
class MapFollower {
 public:
  MapFollower(std::shared_ptr<shard::ShardMapHolder> holder, std::string name)
      : runtime_(1), holder_(std::move(holder)), name_(std::move(name)) {}
  ~MapFollower() { StopFollowing(); }

  // Connects to `from` and fetches the map, waiting up to `connect_timeout` for the authority.
  static Result<std::shared_ptr<MapFollower>> Open(const std::string& name,
                                                   const Endpoint& endpoint,
                                                   std::chrono::milliseconds connect_timeout) {
    auto follower = std::make_shared<MapFollower>(nullptr, name);
    ClientOptions options;
    options.timeout = std::chrono::milliseconds(1000);
    options.connections = 1;
    auto client = MakeClient(follower->runtime_, endpoint, options);
    if (!client.ok()) return client.status();
    follower->client_ = std::move(client).value();
    options.timeout = std::chrono::milliseconds(kFollowWaitMs + 10'000);  // long-polls
    client = MakeClient(follower->runtime_, endpoint, options);
    if (!client.ok()) return client.status();
    follower->follow_client_ = std::move(client).value();
    Result<shard::ShardMap> map = Status::Unavailable("not asked");
    auto until = std::chrono::steady_clock::now() + connect_timeout;
    do {
      map = follower->Fetch();
      if (map.ok() || map.status().code() != Code::kUnavailable) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the authority starts
    } while (std::chrono::steady_clock::now() < until);
    if (!map.ok()) return map.status();
    follower->holder_ = std::make_shared<shard::ShardMapHolder>(std::move(map).value());
    return follower;
  }

  const std::shared_ptr<shard::ShardMapHolder>& holder() const { return holder_; }

  // Fetches the authority's map; adopts it when its epoch is newer.
  Status Pull() {
    std::lock_guard<std::mutex> lock(pull_mu_);
    auto now = std::chrono::steady_clock::now();
    if (now - last_pull_ < std::chrono::milliseconds(20)) return Status::Ok();
    last_pull_ = now;
    return Adopt(*holder_, Fetch());
  }

  // Every service instance built on this follower holds it while it lives: a reload builds the
  // new instance (Acquire) before it stops the old one (Release), so following never stops
  // between. `refresh` 0: no long-poll (refreshed on demand only).
  void Acquire(std::chrono::milliseconds refresh) {
    std::lock_guard<std::mutex> lock(users_mu_);
    if (users_++ > 0 || refresh.count() <= 0 || state_) return;
    state_ = std::make_shared<FollowState>();
    state_->holder = holder_;
    state_->client = follow_client_;
    state_->name = name_;
    state_->pause_ms = refresh.count();
    state_->run = ++runs_;
    Follow(state_, state_->run);
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(users_mu_);
      if (--users_ > 0) return;
    }
    StopFollowing();
  }

  void StopFollowing() {
    std::shared_ptr<FollowState> state;
    {
      std::lock_guard<std::mutex> lock(users_mu_);
      state.swap(state_);
    }
    if (!state) return;
    store::Scheduler::TaskId pause = 0;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      state->run = 0;
      std::swap(pause, state->pause_task);
    }
    if (pause != 0) store::Scheduler::Shared().Cancel(pause);
  }

 private:
  Result<shard::ShardMap> Fetch() {
    Message get;
    get.SetString("shardmap", "get").SetString("map", name_);
    auto reply = CallAndWait(*client_, std::move(get));
    if (!reply.ok()) return reply.status();
    return MapFromReply(*reply);
  }

  // Its own I/O thread: a pull blocks its caller (a router on a node I/O thread) until the reply
  // arrives, which must not need that thread.
  IoRuntime runtime_;
  std::shared_ptr<Handler> client_;         // Pull and Open: 1 s timeout
  std::shared_ptr<Handler> follow_client_;  // long-polls
  std::shared_ptr<shard::ShardMapHolder> holder_;
  std::string name_;
  std::mutex pull_mu_;
  std::chrono::steady_clock::time_point last_pull_{};
  std::mutex users_mu_;
  int users_ = 0;                       // guarded by users_mu_
  uint64_t runs_ = 0;                   // guarded by users_mu_
  std::shared_ptr<FollowState> state_;  // guarded by users_mu_: while following
};

Result<ServiceInstance> MakeFollowerMap(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (Status st = s.CheckOnly({"map", "from", "refresh_ms", "connect_timeout_ms"}); !st.ok())
    return st;
  auto name = s.GetString("map", "main");
  auto from = s.GetString("from", "");
  auto refresh = s.GetInt("refresh_ms", 1000);
  auto connect_timeout = s.GetInt("connect_timeout_ms", 5000);
  for (const Status& st : {St(name), St(from), St(refresh), St(connect_timeout)}) {
    if (!st.ok()) return st;
  }
  if (*refresh < 0) return s.Error("refresh_ms", "must be 0 (no polling) or more");
  if (*connect_timeout < 0) return s.Error("connect_timeout_ms", "must be 0 or more");
  auto endpoint = ParseEndpoint(*from);
  if (!endpoint.ok()) return s.Error("from", endpoint.status().message());
  // Followers live as long as the node's directory (like authoritative maps): a reload reuses it.
  ServiceDirectory& directory = ctx.environment.directory_or_process();
  auto follower = directory.Find<MapFollower>("shard-map-follower/" + *name);
  if (!follower) {
    if (directory.Find<shard::ShardMapHolder>(MapKey(*name))) {
      return s.Error("map", fmt::format("a shard map '{}' already exists in this node", *name));
    }
    auto opened = MapFollower::Open(*name, *endpoint, std::chrono::milliseconds(*connect_timeout));
    if (!opened.ok()) {
      return s.Error("from", fmt::format("cannot get shard map '{}' from {}: {}", *name,
                                         Shown(*from), opened.status().ToString()));
    }
    follower = *opened;
    directory.Put("shard-map-follower/" + *name, follower);
    directory.Put(MapKey(*name), follower->holder());
    directory.Put(PullKey(follower->holder().get()),
                  std::make_shared<ShardMapPull>([raw = follower.get()] { (void)raw->Pull(); }));
  }
  follower->Acquire(std::chrono::milliseconds(*refresh));
  auto handler =
      MakeSyncHandler([holder = follower->holder()](Message, const Context&) -> Result<Message> {
        return DescribeMap(*holder->Current());
      });
  auto stop = [follower] { follower->Release(); };
  return ServiceInstance{handler, {fmt::format("shardmap:get,map:\"{}\"", *name)}, stop};
}

// A map saved at `path` by an earlier run (OnChange below), with the config's shard keys.
Result<shard::ShardMap> ReadSavedMap(const Settings& s, const std::string& path,
                                     const std::map<std::string, std::string>& keys) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto doc = ParseJson(text, path);
  auto not_saved = [&] {
    return s.Error("path", fmt::format("{} is not a saved shard map", path));
  };
  if (!doc.ok() || !doc->IsObject() || !(*doc)["epoch"].IsUint64() || !(*doc)["ranges"].IsArray())
    return not_saved();
  std::vector<std::string> saved;
  for (const auto& r : (*doc)["ranges"].GetArray()) {
    if (!r.IsString()) return not_saved();
    saved.emplace_back(r.GetString());
  }
  auto restored = shard::ShardMap::Make((*doc)["epoch"].GetUint64(), saved, keys);
  if (!restored.ok()) return s.Error("path", restored.status().message());
  return restored;
}

// The shardmap:get long-polls parked on an authoritative map: each is answered at the first
// change past its after_epoch (Wake, from the holder's change hook) or at the end of its wait.
class MapWaits {
 public:
  explicit MapWaits(std::weak_ptr<shard::ShardMapHolder> holder) : holder_(std::move(holder)) {}

  void Park(uint64_t after, int64_t wait_ms, ReplyFn reply) {
    if (draining_.load()) {  // the node stops: no new long wait
      if (auto live = holder_.lock()) reply(DescribeMap(*live->Current()));
      return;
    }
    auto waiter = std::make_shared<Waiter>();
    waiter->after = after;
    waiter->reply = std::move(reply);
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::erase_if(waiting_, [](const auto& w) { return w->done.load(); });
      waiting_.push_back(waiter);
    }
    store::Scheduler::Shared().After(std::chrono::milliseconds(wait_ms),
                                     [waiter, holder = holder_] {
                                       if (auto live = holder.lock())
                                         Answer(*waiter, *live->Current());
                                     });
    // A change between the caller's look and the push above: Current() waits for a swap in
    // progress, so either Wake saw this waiter or this sees the new epoch.
    if (auto live = holder_.lock(); live && live->Current()->epoch() > after)
      Answer(*waiter, *live->Current());
  }

  // The node stops taking requests (`drain`): every parked long-poll is answered now, with the
  // map as it is, and new ones at once. Resume() when a node starts on this map again.
  void Drain() {
    draining_.store(true);
    if (auto live = holder_.lock()) AnswerAll(*live->Current());
  }
  void Resume() { draining_.store(false); }

  // Answers every parked long-poll now, with `map` (the service stops: no answer may come after
  // its node's connections are gone).
  void AnswerAll(const shard::ShardMap& map) {
    std::vector<std::shared_ptr<Waiter>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(waiting_);
    }
    for (const auto& w : all) Answer(*w, map);
  }

  // Called with `next` about to be the map (the holder's change hook, under its lock): the
  // answers go out from the scheduler's thread, not under that lock.
  void Wake(const shard::ShardMap& next) {
    std::vector<std::shared_ptr<Waiter>> due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& w : waiting_) {
        if (w->after < next.epoch() && !w->done.load()) due.push_back(w);
      }
    }
    if (due.empty()) return;
    store::Scheduler::Shared().After(std::chrono::milliseconds(0),
                                     [due = std::move(due), map = next] {
                                       for (const auto& w : due) Answer(*w, map);
                                     });
  }

 private:
  struct Waiter {
    uint64_t after = 0;
    ReplyFn reply;
    std::atomic<bool> done{false};
  };
  static void Answer(Waiter& w, const shard::ShardMap& map) {
    if (!w.done.exchange(true)) w.reply(DescribeMap(map));
  }

  std::weak_ptr<shard::ShardMapHolder> holder_;
  std::atomic<bool> draining_{false};
  std::mutex mu_;
  std::vector<std::shared_ptr<Waiter>> waiting_;  // guarded by mu_
};

// shardmap:get (with after_epoch and wait_ms: a long-poll) and shardmap:set (compare-and-swap) on
// the authoritative map.
void ServeShardMap(shard::ShardMapHolder& holder, MapWaits& waits, const Message& m,
                   ReplyFn reply) {
  auto current = holder.Current();
  auto op = m.GetString("shardmap").value_or("");
  if (op == "get") {
    if (!m.Has("wait_ms")) return reply(DescribeMap(*current));
    auto after = m.GetUint("after_epoch");
    auto wait = m.GetInt("wait_ms");
    if (!after)
      return reply(Status::InvalidField("after_epoch", "must be an epoch (with wait_ms)"));
    if (!wait || *wait < 0 || *wait > kMaxMapWaitMs)
      return reply(Status::InvalidField(
          "wait_ms", fmt::format("must be 0 to {} (milliseconds)", kMaxMapWaitMs)));
    if (current->epoch() > *after || *wait == 0) return reply(DescribeMap(*current));
    return waits.Park(*after, *wait, std::move(reply));
  }
  if (op == "set") {
    auto expected = m.GetUint("expected_epoch");
    auto ranges_json = m.GetArrayJson("ranges");
    if (!expected)
      return reply(Status::InvalidField("expected_epoch", "must be the epoch being replaced"));
    if (!ranges_json) return reply(Status::InvalidField("ranges", "must be an array of ranges"));
    auto doc = ParseJson(*ranges_json, "ranges");
    if (!doc.ok()) return reply(doc.status());
    std::vector<std::string> ranges;
    for (const auto& r : doc->GetArray()) {
      if (!r.IsString()) return reply(Status::InvalidField("ranges", "must be strings"));
      ranges.emplace_back(r.GetString());
    }
    auto next = shard::ShardMap::Make(*expected + 1, ranges, current->shard_keys());
    if (!next.ok()) return reply(next.status());
    if (Status st = holder.CompareAndSwap(*expected, std::move(next).value()); !st.ok())
      return reply(st);
    return reply(DescribeMap(*holder.Current()));
  }
  reply(Status::InvalidField("shardmap", "must be get or set"));
}

}  // namespace

// shard-map: the node's authoritative map. Answers shardmap:get and shardmap:set
// (compare-and-swap).
Result<ServiceInstance> MakeShardMap(const ServiceContext& ctx) {
  const Settings& s = ctx.settings;
  if (s.Has("from")) return MakeFollowerMap(ctx);
  if (Status st = s.CheckOnly({"map", "ranges", "epoch", "shard_keys", "path"}); !st.ok())
    return st;
  auto path = s.GetString("path", "");
  if (!path.ok()) return path.status();
  auto name = s.GetString("map", "main");
  auto ranges = s.GetStringList("ranges", std::vector<std::string>{"-"});
  auto epoch = s.GetInt("epoch", 1);
  auto keys = ShardKeys(s);
  for (const Status& st : {St(name), St(ranges), St(epoch), St(keys)}) {
    if (!st.ok()) return st;
  }
  if (*epoch < 1) return s.Error("epoch", "must be at least 1");
  auto map = shard::ShardMap::Make(static_cast<uint64_t>(*epoch), *ranges, *keys);
  if (!map.ok()) return s.Error("ranges", map.status().message());
  ServiceDirectory& directory = ctx.environment.directory_or_process();
  auto holder = directory.Find<shard::ShardMapHolder>(MapKey(*name));
  auto waits = directory.Find<MapWaits>("shard-map-waits/" + *name);
  if (holder && waits) {
    // Reload: keep the live map (a migration may have moved it past the config's epoch).
  } else {
    // A persisted map newer than the config's wins: migrations move maps past their config.
    if (!path->empty() && std::filesystem::exists(*path)) {
      auto restored = ReadSavedMap(s, *path, *keys);
      if (!restored.ok()) return restored.status();
      if (restored->epoch() >= map->epoch()) map = std::move(restored);
    }
    holder = std::make_shared<shard::ShardMapHolder>(std::move(map).value());
    waits = std::make_shared<MapWaits>(holder);
    // Every change (shardmap:set, a migration's cutover) is saved first, then wakes the
    // followers' long-polls. (In a cluster the agent's hook replaces this one: the KV bucket
    // is then the map's store and its watch the way changes travel.)
    holder->OnChange([file = *path, waits](const shard::ShardMap& next) -> Status {
      if (!file.empty()) {
        Status saved =
            WriteFileAtomically(file, JsonObject()
                                          .Add("epoch", next.epoch())
                                          .AddRaw("ranges", JsonStringArray(ShardNames(next)))
                                          .str());
        if (!saved.ok()) return saved;
      }
      waits->Wake(next);
      return Status::Ok();
    });
    directory.Put(MapKey(*name), holder);
    directory.Put("shard-map-waits/" + *name, waits);
  }
  auto handler = MakeHandler([holder, waits](Message m, const Context&, ReplyFn reply) {
    ServeShardMap(*holder, *waits, m, std::move(reply));
  });
  waits->Resume();
  auto stop = [holder, waits] { waits->AnswerAll(*holder->Current()); };
  return ServiceInstance{.handler = handler,
                         .patterns = {fmt::format("shardmap:*,map:\"{}\"", *name)},
                         .stop = stop,
                         .drain = [waits] { waits->Drain(); },
                         .operations = {"shardmap:*"}};
}

}  // namespace shardkit::services
