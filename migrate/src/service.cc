// The migrator's message service (service.h): migrate:* over the migrations of one directory.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs it with GCC 12

#include "shardkit/migrate/service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "journal.h"
#include "participants.h"
#include "shardkit/message/bus.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/file.h"
#include "shardkit/message/json.h"

namespace shardkit::migrate {
namespace {

class Migrator : public MigratorService {
 public:
  explicit Migrator(MigratorServiceOptions options)
      : dir_(std::move(options.dir)),
        map_(std::move(options.map)),
        find_({{}, {}, std::move(options.find_shard), std::move(options.find_remote)}),
        pool_(1) {}
  ~Migrator() {
    pool_.join();
    for (auto& [id, entry] : migrations_) {
      if (entry.starting.valid()) entry.starting.wait();
    }
  }

  void Handle(Message m, const Context& context, ReplyFn reply) override {
    Attach(context.bus());
    boost::asio::post(pool_, [this, m = std::move(m), reply = std::move(reply)]() mutable {
      std::lock_guard<std::mutex> lock(mu_);
      reply(Serve(m));
    });
  }

  // The bus progress is published on (info:migrate): the node's, while a service instance on
  // this migrator is routed there.
  void Attach(Bus* bus) {
    std::lock_guard<std::mutex> lock(bus_mu_);
    bus_ = bus;
  }
  void Acquire() override {
    std::lock_guard<std::mutex> lock(bus_mu_);
    ++users_;
  }
  bool Release() override {
    {
      std::lock_guard<std::mutex> lock(bus_mu_);
      if (--users_ > 0) return false;
      bus_ = nullptr;
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    for (auto& [id, entry] : migrations_) {
      if (entry.starting.valid()) entry.starting.wait();
    }
    migrations_.clear();
    return true;
  }

  // A resumed copy continues; a cutover interrupted by a crash is finished or undone
  // (Migration::Open).
  void ResumeFromDisk() override {
    // The stores a migration names may be built after the migrator (config order): retry for a
    // few seconds; an operation on a migration not resumed yet also resumes it (Serve).
    boost::asio::post(pool_, [this] {
      for (int attempt = 0; attempt < 50 && !ResumeAll(); ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }

 private:
  // Resumes every migration with a spec on disk not open yet; false if one still lacks a store.
  bool ResumeAll() {
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return true;
      std::error_code ec;
      for (const auto& file : std::filesystem::directory_iterator(dir_, ec)) {
        if (file.path().extension() != ".spec") continue;
        std::string id = file.path().stem().string();
        if (migrations_.count(id)) continue;
        auto spec = SavedSpec(id);
        if (!spec.ok()) {
          spdlog::warn("migrator: cannot resume {}: {}", file.path().string(),
                       spec.status().ToString());
          continue;
        }
        auto resumed = Serve(*spec);
        if (!resumed.ok()) {
          all = false;
          spdlog::warn("migrator: cannot resume migration '{}' yet: {}", id,
                       resumed.status().ToString());
        } else {
          spdlog::info("migrator: resumed migration '{}' in phase {}", id,
                       resumed->GetString("phase").value_or("?"));
        }
      }
    }
    return all;
  }

  // The saved spec of migration `id` (written by its start), or not_found.
  Result<Message> SavedSpec(const std::string& id) {
    std::ifstream in(dir_ + "/" + id + ".spec");
    if (!in) return Status::NotFound(fmt::format("no migration '{}' in this node", id));
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return ParseMessage(text);
  }

  void Publish(const std::string& id, const Progress& progress) {
    Message event = Describe(progress, id);
    event.SetString("info", "migrate");
    std::lock_guard<std::mutex> lock(bus_mu_);
    if (bus_) bus_->Publish(std::move(event));
  }

  static Result<std::vector<std::string>> Names(const Message& m, const char* field) {
    auto text = m.GetArrayJson(field);
    if (!text)
      return Status::Invalid(fmt::format("{}: must be an array of shard names", field),
                             JsonObject().Add("field", field).str());
    auto doc = ParseJson(*text, field);
    if (!doc.ok()) return doc.status();
    std::vector<std::string> names;
    for (const auto& v : doc->GetArray()) {
      if (!v.IsString())
        return Status::Invalid(fmt::format("{}: must be an array of shard names", field),
                               JsonObject().Add("field", field).str());
      auto canonical = shard::CanonicalShardName(v.GetString());
      if (!canonical.ok())
        return Status::Invalid(fmt::format("{}: {}", field, canonical.status().message()));
      names.push_back(*canonical);
    }
    return names;
  }

  static Message Describe(const Progress& p, const std::string& id) {
    Message out;
    out.SetString("id", id).SetString("phase", PhaseName(p.phase));
    out.SetUint("rows_to_copy", p.rows_to_copy).SetUint("rows_copied", p.rows_copied);
    out.SetDouble("copy_rows_per_s", p.copy_rows_per_s);
    out.SetUint("lag", p.lag).SetUint("epoch", p.epoch);
    return out;
  }

  Result<Message> Serve(const Message& m) {
    auto op = m.GetString("migrate").value_or("");
    if (op == "list") return List();
    auto id = m.GetString("id");
    if (!id || id->empty())
      return Status::Invalid("id: a migration id (string) is required", R"({"field":"id"})");
    std::string key(*id);
    if (op == "start") return Start(m, key);
    return Operate(std::string(op), key);
  }

  // migrate:list: the migrations open in this process (resumed from disk or started since), each
  // as status describes it.
  Message List() const {
    std::string items = "[";
    for (const auto& [key, entry] : migrations_) {
      if (!entry.migration) continue;
      if (items.size() > 1) items += ',';
      items += ToJson(Describe(entry.migration->progress(), key));
    }
    return Message().SetArrayJson("migrations", items + "]");
  }

  // A migration not open yet: its stores looked up (remote ones connected), opened or resumed
  // from its journal, and its spec saved for a restarted process.
  Result<std::unique_ptr<Migration>> Open(const Message& m, const std::string& key,
                                          const std::vector<std::string>& sources,
                                          const std::vector<std::string>& targets) {
    auto nodes = internal::ParseNodes(m);
    if (!nodes.ok()) return nodes.status();
    auto max_rows = m.GetUint("max_rows_per_s");
    auto max_lag = m.GetUint("max_lag");
    for (const char* field : {"max_rows_per_s", "max_lag"}) {
      if (m.Has(field) && !m.GetUint(field))
        return Status::Invalid(fmt::format("{}: must be a non-negative integer", field),
                               JsonObject().Add("field", field).str());
    }
    auto placed = internal::PlaceParticipants(sources, targets, *nodes, find_);
    if (!placed.ok()) return placed.status();
    MigrationSpec spec;
    spec.id = key;
    spec.sources = std::move(placed->sources);
    spec.targets = std::move(placed->targets);
    spec.max_rows_per_s = max_rows.value_or(0);
    if (max_lag) spec.cutover.max_lag = *max_lag;
    spec.map = map_;
    spec.journal_path = dir_ + "/" + key + ".journal";
    spec.on_progress = [this, key](const Progress& p) { Publish(key, p); };
    auto opened = Migration::Open(std::move(spec));
    if (!opened.ok()) return opened.status();
    // What a restarted process needs to resume it (the journal holds the positions).
    Message saved;
    saved.SetString("migrate", "start").SetString("id", key);
    saved.SetArrayJson("sources", *m.GetArrayJson("sources"));
    saved.SetArrayJson("targets", *m.GetArrayJson("targets"));
    if (m.Has("nodes")) saved.SetObjectJson("nodes", *m.GetObjectJson("nodes"));
    if (max_rows) saved.SetUint("max_rows_per_s", *max_rows);
    if (max_lag) saved.SetUint("max_lag", *max_lag);
    if (Status s = WriteFileAtomically(dir_ + "/" + key + ".spec", ToJson(saved)); !s.ok())
      return s;
    return opened;
  }

  // migrate:start: opens the migration (saving its spec) unless open, then starts or resumes it.
  Result<Message> Start(const Message& m, const std::string& key) {
    auto sources = Names(m, "sources");
    if (!sources.ok()) return sources.status();
    auto targets = Names(m, "targets");
    if (!targets.ok()) return targets.status();
    // An id names one spec: a start with another spec is refused before anything is looked up.
    if (auto saved = SavedSpec(key); saved.ok()) {
      auto recorded_sources = Names(*saved, "sources");
      auto recorded_targets = Names(*saved, "targets");
      if (recorded_sources.ok() && recorded_targets.ok()) {
        if (Status s = CheckSameSpec(key, *recorded_sources, *recorded_targets, *sources, *targets);
            !s.ok())
          return s;
      }
    }
    auto& entry = migrations_[key];
    auto& slot = entry.migration;
    if (!slot) {
      auto opened = Open(m, key, *sources, *targets);
      if (!opened.ok()) {
        migrations_.erase(key);
        return opened.status();
      }
      slot = std::move(opened).value();
    }
    if (slot->phase() == Phase::kCompleted || slot->phase() == Phase::kCancelled) {
      return Describe(slot->progress(), key);  // finished: start is a no-op
    }
    if (entry.starting.valid() &&
        entry.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      return Describe(slot->progress(), key);  // already copying
    }
    if (slot->phase() != Phase::kCreated) {
      // Copied already: starting only (re)starts the replicators. Not in the background, so a
      // resumed migration never reads as copying to the next command.
      if (Status s = slot->Start(); !s.ok()) return s;
      return Describe(slot->progress(), key);
    }
    // The copy can take minutes: it runs on its own thread; status shows its progress.
    Migration* migration = slot.get();
    entry.starting = std::async(std::launch::async, [migration] { return migration->Start(); });
    return Describe(slot->progress(), key);
  }

  // Every operation but start, on an open migration (resumed from disk first if need be).
  Result<Message> Operate(const std::string& op, const std::string& key) {
    auto it = migrations_.find(key);
    if (it == migrations_.end()) {
      // Started by an earlier run of this process and not resumed yet: resume it now.
      auto spec = SavedSpec(key);
      if (!spec.ok()) return spec.status();
      if (auto resumed = Serve(*spec); !resumed.ok()) return resumed.status();
      it = migrations_.find(key);
      if (it == migrations_.end())
        return Status::NotFound(fmt::format("no migration '{}' in this node", key));
    }
    Migration& migration = *it->second.migration;
    bool copying =
        it->second.starting.valid() &&
        it->second.starting.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
    if (op == "status") {
      Message out = Describe(migration.progress(), key);
      out.SetBool("copying", copying);
      if (!copying && it->second.starting.valid()) {
        Status started = it->second.starting.get();
        it->second.starting = {};
        if (!started.ok()) return started;
      }
      return out;
    }
    if (copying)
      return Status::Unavailable(fmt::format(
          "migration '{}' is still copying; try again when status says copying:false", key));
    if (op == "verify") {
      auto r = migration.Verify();
      if (!r.ok()) return r.status();
      Message out = Describe(migration.progress(), key);
      out.SetUint("compared", r->compared)
          .SetUint("missing", r->missing)
          .SetUint("extra", r->extra);
      out.SetUint("different", r->different).SetUint("in_flux", r->in_flux).SetBool("ok", r->ok());
      return out;
    }
    if (op == "cutover" || op == "rollback") {
      auto r = op == "cutover" ? migration.Cutover() : migration.Rollback();
      if (!r.ok()) return r.status();
      Message out = Describe(migration.progress(), key);
      out.SetDouble("pause_ms", r->pause_ms).SetUint("fence", r->fence);
      return out;
    }
    if (op == "cleanup") {
      auto deleted = migration.Cleanup();
      if (!deleted.ok()) return deleted.status();
      return Describe(migration.progress(), key).SetUint("deleted", *deleted);
    }
    if (op == "complete" || op == "cancel") {
      Status s = op == "complete" ? migration.Complete() : migration.Cancel();
      if (!s.ok()) return s;
      return Describe(migration.progress(), key);
    }
    return Status::Invalid(
        "migrate: must be start, status, verify, cutover, rollback, complete, cancel, cleanup or "
        "list",
        R"({"field":"migrate"})");
  }

  const std::string dir_;
  std::shared_ptr<shard::ShardMapHolder> map_;
  const MigratorServiceOptions find_;  // its find_shard and find_remote
  std::mutex bus_mu_;
  Bus* bus_ = nullptr;  // guarded by bus_mu_
  int users_ = 0;       // guarded by bus_mu_
  boost::asio::thread_pool pool_;
  std::mutex mu_;  // one operation at a time
  struct Entry {
    std::unique_ptr<Migration> migration;
    std::future<Status> starting;  // the copy, while it runs
  };
  std::map<std::string, Entry> migrations_;  // guarded by mu_
  bool closed_ = false;                      // guarded by mu_ (Release)
};

}  // namespace

std::shared_ptr<MigratorService> MakeMigratorService(MigratorServiceOptions options) {
  return std::make_shared<Migrator>(std::move(options));
}

}  // namespace shardkit::migrate
