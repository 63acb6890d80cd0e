#include "rules.h"

#include <fmt/format.h>
#include <shardkit/message/json.h>

#include <algorithm>
#include <set>

namespace shardkit::migrate::internal {
namespace {

// `field` is "sources" or "targets"; a store on another node is named with its node.
Status Refuse(std::string_view field, const Participant& p, const std::string& why) {
  JsonObject details;
  details.Add("field", field).Add("shard", p.shard);
  std::string where;
  if (!p.node.empty()) {
    details.Add("node", p.node);
    where = fmt::format(" on node {}", p.node);
  }
  return Status::Invalid(
      fmt::format("{} {}{}: {}", field == "sources" ? "source" : "target", p.shard, where, why),
      details.str());
}

// Another migration's claim on the store, as a refusal.
Status NotClaimed(const Participant& p, const char* field, const std::string& id) {
  auto holder = p.store->Claimant();
  if (!holder.ok()) return holder.status();
  if (!holder->empty() && *holder != id) {
    return Refuse(field, p,
                  fmt::format("the store is used by migration '{}', which is not completed or "
                              "cancelled",
                              *holder));
  }
  return Status::Ok();
}

Status Empty(const Participant& t) {
  bool holds = false;
  Status scanned = t.store->ScanRange("", store::KsidRange{}, [&](const store::EntityRecord&) {
    holds = true;
    return false;
  });
  if (!scanned.ok()) return scanned;
  if (holds) return Refuse("targets", t, "the store is not empty: it holds entities");
  if (uint64_t records = t.store->feed().LastSequence(); records > 0) {
    return Refuse("targets", t,
                  fmt::format("the store is not empty: its change feed holds {} records", records));
  }
  auto streams = t.store->ReplicatedStreams();
  if (!streams.ok()) return streams.status();
  if (!streams->empty()) {
    return Refuse("targets", t,
                  fmt::format("the store is not empty: it replicated from stream '{}'",
                              streams->begin()->first));
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> Names(const std::vector<Participant>& participants) {
  std::vector<std::string> out;
  for (const Participant& p : participants) out.push_back(p.shard);
  return out;
}

Status CheckNewMigration(const MigrationSpec& spec, const shard::ShardMap& map) {
  std::set<const store::EntityStore*> stores;
  std::set<std::string> source_names;
  for (const Participant& s : spec.sources) {
    if (!map.Find(s.shard)) {
      return Refuse("sources", s,
                    fmt::format("not a shard of the current map (epoch {})", map.epoch()));
    }
    if (!stores.insert(s.store.get()).second) return Refuse("sources", s, "named twice");
    source_names.insert(s.shard);
    if (Status st = NotClaimed(s, "sources", spec.id); !st.ok()) return st;
  }
  for (const Participant& t : spec.targets) {
    if (source_names.count(t.shard) || !stores.insert(t.store.get()).second) {
      return Refuse("targets", t,
                    "it is a source of this migration (or named twice); a target must be "
                    "another store");
    }
    if (map.Find(t.shard)) {
      return Refuse("targets", t,
                    fmt::format("the current map (epoch {}) routes to it; a target must be a "
                                "store nothing routes to",
                                map.epoch()));
    }
    if (Status st = NotClaimed(t, "targets", spec.id); !st.ok()) return st;
    if (Status st = Empty(t); !st.ok()) return st;
  }
  return Status::Ok();
}

Status ClaimStores(const MigrationSpec& spec) {
  std::vector<const Participant*> claimed;
  for (const auto* group : {&spec.sources, &spec.targets}) {
    for (const Participant& p : *group) {
      Status s = p.store->Claim(spec.id);
      if (!s.ok()) {
        for (const Participant* c : claimed) (void)c->store->ReleaseClaim(spec.id);
        const char* field = group == &spec.sources ? "sources" : "targets";
        return s.code() == Code::kConflict ? Refuse(field, p, s.message()) : s;
      }
      claimed.push_back(&p);
    }
  }
  return Status::Ok();
}

Status ClearFreshTarget(const MigrationSpec& spec, const JournalState& state,
                        const Participant& target, const store::KsidRange& range,
                        const std::string& stream) {
  const auto& fresh = state.fresh_targets;
  std::string why;
  if (state.phase != Phase::kCreated) {
    why = fmt::format("the migration is {}", PhaseName(state.phase));
  } else if (std::find(fresh.begin(), fresh.end(), target.shard) == fresh.end()) {
    why = "the journal does not record it as a fresh target of this migration";
  } else if (spec.map->Current()->Find(target.shard)) {
    why = "the shard map routes to it";
  } else if (auto holder = target.store->Claimant(); !holder.ok() || *holder != spec.id) {
    why = "this migration does not hold its claim";
  }
  if (!why.empty()) {
    return Status::Internal(
        fmt::format("migration {}: refusing to clear shard {}: {}", spec.id, target.shard, why));
  }
  std::vector<store::ChangeRecord> clear;
  Status scanned = target.store->ScanRange("", range, [&](const store::EntityRecord& r) {
    clear.push_back({0, r.ksid, r.kind, r.id, store::ChangeOp::kRemove, r.version, {}, 0, false});
    return true;
  });
  if (!scanned.ok()) return scanned;
  if (clear.empty()) return Status::Ok();
  return target.store->ApplyReplicated(stream, clear, 0);
}

Result<uint64_t> DeleteSourceCopies(const MigrationSpec& spec,
                                    const std::map<std::string, store::KsidRange>& ranges) {
  auto map = spec.map->Current();
  for (const Participant& s : spec.sources) {
    if (!s.store) {
      return Refuse("sources", s,
                    "cleanup refused: the store is no longer open in this process (a reload "
                    "retired it); nothing was deleted: its files can be removed directly");
    }
    if (map->Find(s.shard)) {
      return Refuse(
          "sources", s,
          fmt::format("cleanup refused: the current map (epoch {}) routes to it", map->epoch()));
    }
    if (auto consumers = s.store->feed().Consumers(); !consumers.empty()) {
      return Refuse("sources", s,
                    fmt::format("cleanup refused: feed consumer '{}' still reads it",
                                consumers.begin()->first));
    }
    auto holder = s.store->Claimant();
    if (!holder.ok()) return holder.status();
    if (!holder->empty())
      return Refuse("sources", s,
                    fmt::format("cleanup refused: migration '{}' claims it", *holder));
  }
  uint64_t deleted = 0;
  const std::string stream = fmt::format("migrate:{}:cleanup", spec.id);
  for (const Participant& s : spec.sources) {
    // Rounds of at most one batch: a scan never runs over keys it deletes.
    while (true) {
      std::vector<store::ChangeRecord> batch;
      Status scanned =
          s.store->ScanRange("", ranges.at(s.shard), [&](const store::EntityRecord& r) {
            batch.push_back(
                {0, r.ksid, r.kind, r.id, store::ChangeOp::kRemove, r.version, {}, 0, false});
            return batch.size() < spec.copy_batch;
          });
      if (!scanned.ok()) return scanned;
      if (batch.empty()) break;
      if (Status st = s.store->ApplyReplicated(stream, batch, 0); !st.ok()) return st;
      deleted += batch.size();
    }
  }
  return deleted;
}

Status ReleaseStores(const MigrationSpec& spec) {
  for (const auto* group : {&spec.sources, &spec.targets}) {
    for (const Participant& p : *group) {
      if (!p.store) continue;  // released already
      if (Status s = p.store->ReleaseClaim(spec.id); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

}  // namespace shardkit::migrate::internal

namespace shardkit::migrate {

Status CheckSameSpec(std::string_view id, std::vector<std::string> recorded_sources,
                     std::vector<std::string> recorded_targets, std::vector<std::string> sources,
                     std::vector<std::string> targets) {
  for (auto* names : {&recorded_sources, &recorded_targets, &sources, &targets}) {
    std::sort(names->begin(), names->end());
  }
  if (recorded_sources == sources && recorded_targets == targets) return Status::Ok();
  auto list = [](const std::vector<std::string>& names) { return JsonStringArray(names); };
  return Status::Conflict(
      fmt::format("id: migration '{}' exists with sources {} and targets {}; the same id must "
                  "name the same shards (use a new id for another migration)",
                  id, list(recorded_sources), list(recorded_targets)),
      JsonObject()
          .Add("field", "id")
          .AddRaw("sources", list(recorded_sources))
          .AddRaw("targets", list(recorded_targets))
          .str());
}

}  // namespace shardkit::migrate
