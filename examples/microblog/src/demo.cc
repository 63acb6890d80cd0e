// `shardkit demo`: the microblog of *The Tao of Microservices*, one `shardkit serve` process per
// service, grown by adding processes and reloading routes while a load generator posts, reads and
// searches through the front's HTTP listener (demo.h, docs/microblog.md). The node configs are in
// configs.cc, the load in load_generator.h.
#include "microblog/demo.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>
#include <shardkit/services/client.h>
#include <shardkit/services/endpoint.h>
#include <shardkit/shard/shard_map.h>

#include "configs.h"
#include "load_generator.h"
#include "processes.h"

namespace microblog {
namespace {

// --- the demo ----------------------------------------------------------------------------------

class Demo {
 public:
  Demo(const DemoOptions& options, std::string dir)
      : options_(options),
        step_(options.quick ? std::chrono::milliseconds(1'500) : std::chrono::milliseconds(8'000)),
        users_(options.quick ? 20 : 50),
        nodes_(options.binary, dir) {
    system_.dir = std::move(dir);
  }

  int Run();

 private:
  static void Say(std::string_view title, std::string_view why) {
    fmt::print("\n== {}\n{}\n", title, why);
    std::fflush(stdout);
  }
  static void Change(std::string_view what) {
    fmt::print("   + {}\n", what);
    std::fflush(stdout);
  }

  Status Start(const std::string& name, const std::string& toml, int iteration) {
    auto node = nodes_.Start(name, toml, iteration);
    if (!node.ok()) return node.status();
    system_.url[name] = (*node)->tcp;
    Change(fmt::format("started node {:<12} pid {:<7} {}", name, (*node)->pid,
                       fmt::join((*node)->urls, " ")));
    return Status::Ok();
  }
  Status Reload(const std::string& name, const std::string& toml, std::string_view what) {
    if (Status s = nodes_.Reload(name, toml); !s.ok()) return s;
    Change(fmt::format("reloaded {:<13} {}", name, what));
    return Status::Ok();
  }
  // Through the front, as a user would.
  Result<Message> Front(std::string_view json) {
    auto message = shardkit::ParseMessage(json);
    if (!message.ok()) return message.status();
    return shardkit::services::CallAndWait(*front_client_, std::move(message).value());
  }
  bool Wait(std::chrono::milliseconds d) { return SleepUnlessInterrupted(d); }
  void ShowNodes();

  Status Iteration0();
  Status Iteration1();
  Status Iteration2();
  Status Iteration3();
  Status Iteration4();
  // Polls a migration's status, drawing its copy progress, until the copy ends.
  Result<Message> FollowCopy(const std::function<Result<Message>()>& poll, uint64_t total);
  double HitRatio();
  int Summary();

  const DemoOptions& options_;
  const std::chrono::milliseconds step_;
  const int users_;
  NodeProcesses nodes_;
  System system_;
  std::shared_ptr<shardkit::Handler> front_client_;
  std::unique_ptr<LoadGenerator> load_;
  // Iteration 4's figures.
  std::string split_source, split_result = "not run";
  double split_pause_ms = -1;
  uint64_t split_rows = 0;
};

void Demo::ShowNodes() {
  std::vector<std::string> gone = nodes_.Exited();
  fmt::print("   nodes: ");
  for (const NodeProcess* node : nodes_.All()) {
    fmt::print("{}{}(pid {}, since it{})", node == nodes_.All().front() ? "" : ", ", node->name,
               node->pid, node->started_in);
  }
  fmt::print("\n   {}\n", gone.empty() ? "none restarted or stopped: every pid above is the one "
                                         "started in its iteration"
                                       : fmt::format("EXITED: {}", fmt::join(gone, ", ")));
}

Status Demo::Iteration0() {
  system_.entries = "";
  if (Status s = Start("entry-store", EntryStoreConfig(system_), 0); !s.ok()) return s;
  system_.entries = system_.url["entry-store"];
  if (Status s = Start("post", PostConfig(system_), 0); !s.ok()) return s;
  if (Status s = Start("front", FrontConfig(system_), 0); !s.ok()) return s;
  const NodeProcess* front = nodes_.Find("front");
  auto endpoint = shardkit::services::ParseEndpoint(front->urls.front());
  if (!endpoint.ok()) return endpoint.status();
  shardkit::services::ClientOptions client_options;
  client_options.connections = 4;
  client_options.timeout = std::chrono::seconds(10);
  auto client = shardkit::services::MakeClient(nodes_.runtime(), *endpoint, client_options);
  if (!client.ok()) return client.status();
  front_client_ = *client;

  const int posts = options_.quick ? 100 : 400;
  std::mt19937 rng(7);
  std::vector<std::string> ids;
  for (int i = 0; i < posts && !Interrupted(); ++i) {
    auto r = Front(fmt::format(R"({{"post":"entry","user":"u{}","text":"{} {} {}"}})", i % users_,
                               kWords[rng() % std::size(kWords)], kWords[rng() % std::size(kWords)],
                               kWords[rng() % std::size(kWords)]));
    if (!r.ok()) return Status(r.status().code(), "posting: " + r.status().message());
    ids.push_back(EntryIdOf(*r));
  }
  fmt::print("   POST {}/act post:entry x{}; the last answered {}\n", front->urls.front(), posts,
             ids.empty() ? "" : ids.back());
  auto listed =
      Front(R"({"store":"list","kind":"entry","q":{"user":"u7","limit$":3,"fields$":["text"]}})");
  fmt::print("   store:list,kind:entry q:{{user:u7, limit$:3}} -> {}\n",
             listed.ok() ? std::string(listed->GetArrayJson("items").value_or("?"))
                         : listed.status().ToString());
  load_ = std::make_unique<LoadGenerator>(front_client_, users_, 3, ids, "it0 post + read");
  fmt::print("   load generator: 3 HTTP clients posting, loading and listing entries\n");
  Wait(step_);
  ShowNodes();
  return Status::Ok();
}

Status Demo::Iteration1() {
  load_->StartStep("it1 + search");
  if (Status s = Start("index", IndexConfig(system_), 1); !s.ok()) return s;
  system_.info_subscribers = {system_.url["index"]};
  if (Status s = Reload("post", PostConfig(system_), "info:entry -> broadcast to [index]"); !s.ok())
    return s;
  system_.index = true;
  if (Status s = Reload("front", FrontConfig(system_), "search:query -> index"); !s.ok()) return s;
  load_->EnableSearch();
  Wait(step_ / 2);
  auto r = Front(R"({"search":"query","query":"coffee","limit":3})");
  fmt::print(
      "   search:query,query:coffee -> {} entries found (the index holds what was posted "
      "since it joined)\n",
      r.ok() ? r->GetUint("count").value_or(0) : 0);
  if (!r.ok()) return r.status();
  Wait(step_ / 2);
  ShowNodes();
  return Status::Ok();
}

double Demo::HitRatio() {
  auto stats = nodes_.Call(
      "entry-cache",
      std::move(shardkit::ParseMessage(R"({"sys":"cache","cmd":"stats","name":"entry-cache"})"))
          .value());
  return stats.ok() ? stats->GetDouble("hit_ratio").value_or(0) : -1;
}

Status Demo::Iteration2() {
  load_->StartStep("it2 cache transition");
  system_.entry_store_patterns = {"store:*,kind:entry", "store:*,kind:entry,cache:true"};
  if (Status s = Reload("entry-store", EntryStoreConfig(system_),
                        "patterns: store:*,kind:entry AND store:*,kind:entry,cache:true");
      !s.ok())
    return s;
  if (Status s = Start("entry-cache", CacheConfig(system_), 2); !s.ok()) return s;
  system_.entries = system_.url["entry-cache"];
  // The writer first, so every write after this point invalidates the cache.
  if (Status s = Reload("post", PostConfig(system_), "store:*,kind:entry -> entry-cache"); !s.ok())
    return s;
  Wait(step_ / 4);
  if (Status s = Reload("front", FrontConfig(system_), "store:load|list,kind:entry -> entry-cache");
      !s.ok())
    return s;
  Wait(step_ / 4);
  system_.entry_store_patterns = {"store:*,kind:entry,cache:true"};
  if (Status s = Reload("entry-store", EntryStoreConfig(system_),
                        "patterns: store:*,kind:entry,cache:true only (the transition is over)");
      !s.ok())
    return s;
  load_->StartStep("it2 with cache");
  for (int i = 1; i <= 4 && !Interrupted(); ++i) {
    Wait(step_ / 4);
    fmt::print("   cache hit ratio after {:4.1f} s: {:5.1f}%\n", i * step_.count() / 4000.0,
               100 * HitRatio());
    std::fflush(stdout);
  }
  ShowNodes();
  return Status::Ok();
}

Status Demo::Iteration3() {
  load_->StartStep("it3 + timelines");
  for (const char* name : {"follow", "timeline"}) {
    std::string toml =
        std::string(name) == "follow" ? FollowConfig(system_) : TimelineConfig(system_);
    if (Status s = Start(name, toml, 3); !s.ok()) return s;
  }
  if (Status s = Start("fanout", FanoutConfig(system_), 3); !s.ok()) return s;
  system_.info_subscribers = {system_.url["index"], system_.url["fanout"]};
  if (Status s = Reload("post", PostConfig(system_), "info:entry -> broadcast to [index, fanout]");
      !s.ok())
    return s;
  system_.social = true;
  if (Status s =
          Reload("front", FrontConfig(system_), "follow:* -> follow, timeline:list -> timeline");
      !s.ok())
    return s;
  // Everyone follows the next five users.
  int follows = 0;
  for (int u = 0; u < users_ && !Interrupted(); ++u) {
    for (int k = 1; k <= 5; ++k) {
      auto r = Front(
          fmt::format(R"({{"follow":"user","user":"u{}","target":"u{}"}})", u, (u + k) % users_));
      if (!r.ok()) return Status(r.status().code(), "following: " + r.status().message());
      ++follows;
    }
  }
  auto followers = Front(R"({"follow":"list","kind":"followers","user":"u1"})");
  fmt::print("   {} follow:user through the front; follow:list,kind:followers,user:u1 -> {}\n",
             follows,
             followers.ok() ? std::string(followers->GetArrayJson("users").value_or("?"))
                            : followers.status().ToString());
  load_->EnableTimelines();
  Wait(step_);
  auto timeline = Front(R"({"timeline":"list","user":"u1","limit":3})");
  if (!timeline.ok()) return timeline.status();
  auto doc = shardkit::ParseJson(timeline->GetArrayJson("items").value_or("[]"), "items");
  fmt::print("   timeline:list,user:u1,limit:3 -> {} newest entries, by ",
             doc.ok() ? doc->Size() : 0);
  if (doc.ok()) {
    for (const auto& item : doc->GetArray())
      fmt::print("{} ", item.HasMember("author") ? item["author"].GetString() : "?");
  }
  fmt::print("\n");
  ShowNodes();
  return Status::Ok();
}

// Rows of `kind:timeline` on each shard, asked of the shard's store directly.
Result<std::map<std::string, uint64_t>> ShardRows(NodeProcesses& nodes,
                                                  const std::vector<std::string>& shards) {
  std::map<std::string, uint64_t> rows;
  for (const auto& shard : shards) {
    std::string cursor;
    do {  // a store:list answers one page: follow its cursor
      Message list;
      list.SetString("store", "list").SetString("kind", "timeline").SetString("shard", shard);
      shardkit::JsonObject q;
      q.AddRaw("fields$", R"(["id"])");
      if (!cursor.empty()) q.Add("cursor$", cursor);
      list.SetObjectJson("q", q.str());
      auto r = nodes.Call("timeline", std::move(list));
      if (!r.ok()) return r.status();
      auto doc = shardkit::ParseJson(r->GetArrayJson("items").value_or("[]"), "items");
      if (!doc.ok()) return doc.status();
      rows[shard] += doc->Size();
      cursor = std::string(r->GetString("cursor").value_or(""));
    } while (!cursor.empty());
  }
  return rows;
}

Result<Message> Demo::FollowCopy(const std::function<Result<Message>()>& poll, uint64_t total) {
  const bool tty = isatty(fileno(stdout));
  Result<Message> status = Status::Internal("unset");
  for (;;) {
    status = poll();
    if (!status.ok()) return status.status();
    uint64_t done = std::min(total, status->GetUint("rows_copied").value_or(0));
    bool copying = status->GetBool("copying").value_or(false);
    int width = 40, filled = total ? static_cast<int>(width * done / total) : width;
    if (!copying) filled = width, done = std::max(done, total);
    if (tty || !copying) {
      fmt::print("{}   copy [{:<{}}] {}/{} rows{}", tty ? "\r" : "", std::string(filled, '#'),
                 width, done, total, copying ? "" : "\n");
      std::fflush(stdout);
    }
    if (!copying) break;
    if (!Wait(std::chrono::milliseconds(50))) return Status::Unavailable("interrupted");
  }
  return status;
}

Status Demo::Iteration4() {
  auto rows = ShardRows(nodes_, system_.timeline_shards);
  if (!rows.ok()) return rows.status();
  for (const auto& [shard, n] : *rows) fmt::print("   timeline shard {:<4} {} rows\n", shard, n);
  split_source = std::max_element(rows->begin(), rows->end(), [](const auto& a, const auto& b) {
                   return a.second < b.second;
                 })->first;
  auto range = shardkit::shard::ParseRange(split_source);
  if (!range.ok()) return range.status();
  uint64_t end = range->end;  // 0 means the end of the keyspace
  uint64_t mid = range->begin + ((end == 0 ? 0 - range->begin : end - range->begin) / 2);
  std::string left = shardkit::shard::FormatRange({range->begin, mid});
  std::string right = shardkit::shard::FormatRange({mid, end});
  load_->StartStep("it4 live split");
  system_.remote_timeline_shards = {left, right};
  if (Status s = Start("timeline-b", TimelineShardsConfig(system_), 4); !s.ok()) return s;
  if (Status s = Reload(
          "timeline", TimelineConfig(system_),
          fmt::format("routes to the target shards {} and {} on timeline-b (empty)", left, right));
      !s.ok())
    return s;
  const std::string target_node = system_.url.at("timeline-b");

  auto migrate = [&](std::string_view op,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    Message m;
    m.SetString("migrate", op).SetString("id", "split-" + split_source);
    if (op == "start") {
      m.SetArrayJson("sources", shardkit::JsonStringArray({split_source}));
      m.SetArrayJson("targets", shardkit::JsonStringArray({left, right}));
      m.SetObjectJson("nodes",
                      shardkit::JsonObject{}.Add(left, target_node).Add(right, target_node).str());
    }
    return nodes_.Call("timeline", std::move(m), timeout);
  };
  fmt::print("   migrate:start sources:[{}] targets:[{}, {}] on {}\n", split_source, left, right,
             target_node);
  auto started = migrate("start");
  if (!started.ok()) return started.status();
  auto status = FollowCopy([&] { return migrate("status"); }, (*rows)[split_source]);
  if (!status.ok()) return status.status();
  split_rows = status->GetUint("rows_copied").value_or(0);
  fmt::print("   copied {} rows at {:.0f} rows/s, lag {}\n", split_rows,
             status->GetDouble("copy_rows_per_s").value_or(0), status->GetUint("lag").value_or(0));
  auto verified = migrate("verify");
  if (!verified.ok()) return verified.status();
  fmt::print("   verify: {} compared, {} missing, {} extra, {} different ({} written meanwhile)\n",
             verified->GetUint("compared").value_or(0), verified->GetUint("missing").value_or(0),
             verified->GetUint("extra").value_or(0), verified->GetUint("different").value_or(0),
             verified->GetUint("in_flux").value_or(0));
  auto cut = migrate("cutover");
  if (!cut.ok()) return cut.status();
  split_pause_ms = cut->GetDouble("pause_ms").value_or(-1);
  fmt::print("   cutover: map epoch {} -> {}, writes to {} paused {:.1f} ms\n",
             cut->GetUint("epoch").value_or(1) - 1, cut->GetUint("epoch").value_or(0), split_source,
             split_pause_ms);
  Wait(step_ / 2);
  auto completed = migrate("complete");
  split_result = completed.ok() ? "completed" : "failed: " + completed.status().ToString();
  Message get;
  get.SetString("shardmap", "get").SetString("map", "main");
  auto map = nodes_.Call("timeline", std::move(get));
  fmt::print(
      "   migrate:complete -> {}; shard map now {}\n", split_result,
      map.ok() ? std::string(map->GetArrayJson("ranges").value_or("?")) : map.status().ToString());
  Wait(step_ / 2);
  ShowNodes();
  return completed.ok() ? Status::Ok() : completed.status();
}

int Demo::Summary() {
  double hit_ratio = HitRatio();
  load_->Stop();
  auto steps = load_->steps();
  fmt::print("\n== Summary (as the clients of the front saw it)\n");
  fmt::print("   {:<22} {:>9} {:>7} {:>9} {:>9}\n", "step", "requests", "errors", "p50 ms",
             "p99 ms");
  uint64_t requests = 0, errors = 0;
  for (const auto& s : steps) {
    requests += s.requests;
    errors += s.errors;
    fmt::print("   {:<22} {:>9} {:>7} {:>9.2f} {:>9.2f}\n", s.name, s.requests, s.errors,
               Percentile(s.latencies_ms, 0.5), Percentile(s.latencies_ms, 0.99));
  }
  std::vector<std::string> gone = nodes_.Exited();
  fmt::print("   cache hit ratio {:.1f}%   split {} -> {} ({} rows), write pause {:.1f} ms\n",
             100 * hit_ratio, split_source, split_result, split_rows, split_pause_ms);
  fmt::print("   restarts: {}   errors: {}\n", gone.size(), errors);
  for (const auto& e : load_->errors()) fmt::print("     {}\n", e);
  fmt::print("\n   node           pid      log; metrics\n");
  for (const NodeProcess* node : nodes_.All()) {
    fmt::print("   {:<14} {:<8} {}\n   {:<23} curl {}/metrics\n", node->name, node->pid,
               node->log_path, "", node->http);
  }
  fmt::print(
      "\ndemo-result: errors={} requests={} cache_hit_ratio={:.3f} split={} pause_ms={:.1f} "
      "restarts={}\n",
      errors, requests, hit_ratio, split_result == "completed" ? "completed" : "failed",
      split_pause_ms, gone.size());
  std::fflush(stdout);
  bool ok = errors == 0 && hit_ratio > 0 && split_result == "completed" && gone.empty();
  return ok ? 0 : 1;
}

int Demo::Run() {
  // The iterations in order, each with what it adds and why, said before it runs.
  struct Iteration {
    std::string_view title;
    std::string_view why;
    Status (Demo::*run)();
  };
  const Iteration iterations[] = {
      {"Iteration 0: front, post and entry-store, each its own process",
       "   Posting is post:entry (post saves with store:save,kind:entry, then announces "
       "info:entry,\n"
       "   which nobody hears yet); reading is store:load|list,kind:entry, routed by the front.",
       &Demo::Iteration0},
      {"Iteration 1: add index (search:insert, search:query), by configuration",
       "   index hears info:entry and turns it into search:insert; post does not know it exists.\n"
       "   A new process, then routes added by reload: nothing running is edited or restarted.",
       &Demo::Iteration1},
      {"Iteration 2: add entry-cache with the book's transition sequence, under load",
       "   1. entry-store also serves store:*,kind:entry,cache:true   2. start entry-cache\n"
       "   3. post and front send entry messages to the cache   4. entry-store serves only "
       "cache:true",
       &Demo::Iteration2},
      {"Iteration 3: timelines: follow, timeline (sharded by user) and fanout",
       "   fanout hears info:entry, asks follow:list,kind:followers and sends timeline:insert to\n"
       "   the author and each follower. Three processes, then routes added by reload.",
       &Demo::Iteration3},
      {"Iteration 4: split the busiest timeline shard live onto a new process, under the load",
       "   A new node, timeline-b, serves the two empty target shards and follows the timeline\n"
       "   node's shard map; a reload routes their shard messages there. The migrator copies over\n"
       "   TCP, catches up from the change feed, verifies, then cuts over: writes to the source\n"
       "   wait at its gate, the shard map moves to a new epoch and they continue on timeline-b.",
       &Demo::Iteration4},
  };
  Status status;
  for (const Iteration& iteration : iterations) {
    if (!status.ok() || Interrupted()) break;
    Say(iteration.title, iteration.why);
    status = (this->*iteration.run)();
  }
  if (Interrupted()) {
    fmt::print("\ninterrupted: stopping the nodes\n");
    return 130;
  }
  if (!status.ok()) {
    fmt::print(stderr, "\nshardkit demo: {}\n", status.ToString());
    for (const NodeProcess* node : nodes_.All())
      fmt::print(stderr, "   {} log: {}\n", node->name, node->log_path);
    if (load_) load_->Stop();
    return 1;
  }
  int code = Summary();
  if (options_.keep_running && !Interrupted()) {
    const NodeProcess* front = nodes_.Find("front");
    std::string http = front->urls.front(), tcp = front->tcp;
    fmt::print(R"(
== The system keeps running (ctrl-C stops every node). Try:
   curl -s {0}/act -d '{{"post":"entry","user":"ann","text":"hello sharded world"}}'
   curl -s {0}/act -d '{{"search":"query","query":"hello"}}'
   curl -s {0}/act -d '{{"follow":"user","user":"u1","target":"ann"}}'
   curl -s {0}/act -d '{{"timeline":"list","user":"u1","limit":3}}'
   shardkit act 'store:list,kind:entry' --to {1}
   shardkit routes --to {1}
   shardkit explain 'search:query,query:x' --to {1}
   shardkit act 'migrate:status,id:split-{2}' --to {3}
   curl -s {4}/metrics | grep shardkit_requests_total
)",
               http, tcp, split_source, nodes_.Find("timeline")->tcp, front->http);
    std::fflush(stdout);
    while (SleepUnlessInterrupted(std::chrono::seconds(1))) {
    }
    fmt::print("\nstopping the nodes\n");
  }
  return code;
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  DemoOptions resolved = options;
  if (resolved.binary.empty()) {
    std::error_code ec;
    resolved.binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) {
      fmt::print(stderr, "shardkit demo: cannot find its own executable: {}\n", ec.message());
      return 2;
    }
  }
  const bool temp_dir = resolved.dir.empty();
  std::string dir =
      temp_dir
          ? (std::filesystem::temp_directory_path() / fmt::format("shardkit-demo-{}", getpid()))
                .string()
          : resolved.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir + "/data", ec);
  if (ec) {
    fmt::print(stderr, "shardkit demo: cannot create {}: {}\n", dir, ec.message());
    return 2;
  }
  InstallInterruptHandler();
  fmt::print(
      "shardkit demo: the microblog of *The Tao of Microservices*, one `shardkit serve` process "
      "per service\n"
      "   configs, data and logs in {}\n",
      dir);
  int code;
  {
    Demo demo(resolved, dir);
    code = demo.Run();
  }  // every node is stopped here (NodeProcesses' destructor)
  // The data goes; configs and logs stay, so the log paths printed above can still be read.
  if (temp_dir) std::filesystem::remove_all(dir + "/data", ec);
  fmt::print("all nodes stopped; their configs and logs are in {}\n", dir);
  return code;
}

}  // namespace microblog
