#include "shardkit/migrate/migration.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "journal.h"
#include "replicator.h"
#include "rules.h"
#include "shardkit/message/json.h"
#include "verify.h"

namespace shardkit::migrate {

std::string_view PhaseName(Phase phase) {
  // Indexed by Phase, in its declaration order.
  static constexpr std::array<std::string_view, 7> kNames = {
      "created", "copied", "cutover", "cutover_done", "rolled_back", "completed", "cancelled",
  };
  static_assert(kNames.size() == static_cast<size_t>(Phase::kCancelled) + 1);
  auto index = static_cast<size_t>(phase);
  return index < kNames.size() ? kNames[index] : "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

class Migration::Impl {
 public:
  explicit Impl(MigrationSpec spec) : spec_(std::move(spec)) {}

  Status Validate() {
    if (spec_.id.empty() || spec_.id.find('\0') != std::string::npos)
      return Status::Invalid("id: must be a non-empty name");
    if (spec_.sources.empty() || spec_.targets.empty())
      return Status::Invalid("sources and targets: both are required");
    if (!spec_.map) return Status::Invalid("map: the shard map holder is required");
    auto map = spec_.map->Current();
    std::vector<std::string> source_names, target_names;
    for (auto* group : {&spec_.sources, &spec_.targets}) {
      for (Participant& p : *group) {
        auto range = shard::ParseRange(p.shard);
        if (!range.ok()) return range.status();
        p.shard = *shard::CanonicalShardName(p.shard);
        ranges_[p.shard] = *range;
        if (!p.store || !p.gate)
          return Status::Invalid(fmt::format("shard {}: store and gate are required", p.shard));
      }
    }
    for (const Participant& s : spec_.sources) source_names.push_back(s.shard);
    for (const Participant& t : spec_.targets) target_names.push_back(t.shard);
    // The targets must own exactly what the sources own: replacing the sources by the targets in
    // a map must give a valid map.
    auto check = [&](const std::vector<std::string>& a,
                     const std::vector<std::string>& b) -> Status {
      std::vector<std::string> ranges = b;
      auto other = ShardsWithout(*map, a);
      ranges.insert(ranges.end(), other.begin(), other.end());
      auto made = shard::ShardMap::Make(map->epoch() + 1, ranges, map->shard_keys());
      if (!made.ok())
        return Status::Invalid(fmt::format("targets do not own exactly the sources' ranges: {}",
                                           made.status().message()));
      return Status::Ok();
    };
    bool sources_current = std::all_of(source_names.begin(), source_names.end(),
                                       [&](const std::string& n) { return map->Find(n); });
    bool targets_current = std::all_of(target_names.begin(), target_names.end(),
                                       [&](const std::string& n) { return map->Find(n); });
    if (!sources_current && !targets_current) {
      const Participant& s =
          *std::find_if(spec_.sources.begin(), spec_.sources.end(),
                        [&](const Participant& p) { return !map->Find(p.shard); });
      return Status::Invalid(
          fmt::format("source {}{}: not a shard of the current map (epoch {})", s.shard,
                      s.node.empty() ? "" : " on node " + s.node, map->epoch()),
          JsonObject().Add("field", "sources").Add("shard", s.shard).Add("node", s.node).str());
    }
    return sources_current ? check(source_names, target_names) : check(target_names, source_names);
  }

  Status Resume() {
    auto journal = internal::ReadJournal(spec_.journal_path);
    if (!journal.ok() && journal.status().code() != Code::kNotFound) return journal.status();
    if (!journal.ok()) return Create();
    state_ = std::move(journal).value();
    if (!state_.sources.empty()) {
      if (Status s = CheckSameSpec(spec_.id, state_.sources, state_.targets,
                                   internal::Names(spec_.sources), internal::Names(spec_.targets));
          !s.ok())
        return s;
    }
    // A crash between a final phase and the release of the claims: release them now.
    if (state_.phase == Phase::kCompleted || state_.phase == Phase::kCancelled) ReleaseClaims();
    auto map = spec_.map->Current();
    bool switched = std::all_of(spec_.targets.begin(), spec_.targets.end(),
                                [&](const Participant& t) { return map->Find(t.shard); });
    if (state_.phase == Phase::kCutover) {
      // The coordinator died inside a cutover: the map says whether it passed the point of no
      // return, and in which direction (a rollback is a cutover back to the sources).
      if (map->epoch() > state_.epoch_before) {
        Status marked = switched ? MarkMoved(spec_.sources, spec_.targets, map->epoch())
                                 : MarkMoved(spec_.targets, spec_.sources, map->epoch());
        if (!marked.ok()) return marked;
      }
      if (switched) {
        state_.phase = Phase::kCutoverDone;
        state_.epoch_after = map->epoch();
        for (Participant& s : spec_.sources) s.gate->Retire();
        for (Participant& t : spec_.targets) t.gate->Open();
      } else if (state_.back && map->epoch() > state_.epoch_before) {
        // A rollback that passed its map swap.
        state_.phase = Phase::kRolledBack;
        state_.epoch_after = map->epoch();
        for (Participant& t : spec_.targets) t.gate->Retire();
        for (Participant& s : spec_.sources) s.gate->Open();
      } else {
        state_.phase = Phase::kCopied;
        for (Participant& s : spec_.sources) s.gate->Open();
      }
      if (Status s = Save(); !s.ok()) return s;
    }
    if (state_.phase == Phase::kCopied || state_.phase == Phase::kRolledBack) StartForward();
    if (state_.phase == Phase::kCutoverDone) {
      for (Participant& s : spec_.sources) s.gate->Retire();
      StartReverse();
    }
    return Status::Ok();
  }

  Status Start() {
    if (state_.phase == Phase::kCompleted || state_.phase == Phase::kCancelled) {
      return Status::Invalid(fmt::format("migration {} is {}", spec_.id, PhaseName(state_.phase)));
    }
    if (state_.phase == Phase::kCreated) {
      if (Status s = Copy(); !s.ok()) return s;
      state_.phase = Phase::kCopied;
      if (Status s = Save(); !s.ok()) return s;
      internal::CrashPoint("migrate:copied");
    }
    if (state_.phase == Phase::kCopied || state_.phase == Phase::kRolledBack) StartForward();
    return Status::Ok();
  }

  Result<VerifyReport> Verify() {
    if (state_.phase != Phase::kCopied && state_.phase != Phase::kRolledBack) {
      return Status::Invalid(
          fmt::format("verify needs a copied migration (phase is {})", PhaseName(state_.phase)));
    }
    // Compare a source only once the targets hold everything up to `position` of it.
    auto caught_up = [this](const std::string& source, uint64_t position) -> Status {
      for (size_t i = 0; i < forward_.size(); ++i) {
        if (forward_pairs_[i].first == source &&
            !forward_[i]->WaitUntil(position, std::chrono::seconds(10))) {
          return Status::Timeout(
              fmt::format("verify: {} did not catch up to {}", forward_[i]->stream(), position));
        }
      }
      return Status::Ok();
    };
    return internal::Diff(spec_.sources, spec_.targets, ranges_, caught_up);
  }

  Result<CutoverReport> Cutover() {
    if (state_.phase == Phase::kCutoverDone) return Done();
    if (state_.phase != Phase::kCopied && state_.phase != Phase::kRolledBack) {
      return Status::Invalid(
          fmt::format("cutover needs a copied migration (phase is {})", PhaseName(state_.phase)));
    }
    return Switch(spec_.sources, spec_.targets, forward_, /*forward=*/true);
  }

  Result<CutoverReport> Rollback() {
    if (state_.phase == Phase::kRolledBack) return Done();
    if (state_.phase != Phase::kCutoverDone) {
      return Status::Invalid(fmt::format("rollback needs a cut-over migration (phase is {})",
                                         PhaseName(state_.phase)));
    }
    return Switch(spec_.targets, spec_.sources, reverse_, /*forward=*/false);
  }

  Status Complete() {
    if (state_.phase == Phase::kCompleted) return Status::Ok();
    if (state_.phase == Phase::kRolledBack) {
      return Status::Invalid(
          "complete refused: the migration is rolled_back and the map routes to the sources; "
          "cut over again, or cancel to keep the sources");
    }
    if (state_.phase != Phase::kCutoverDone) {
      return Status::Invalid(fmt::format("complete needs a cut-over migration (phase is {})",
                                         PhaseName(state_.phase)));
    }
    Status saved = End(Phase::kCompleted);
    internal::CrashPoint("migrate:completed");
    return saved;
  }

  Status Cancel() {
    if (state_.phase == Phase::kCancelled) return Status::Ok();
    if (state_.phase == Phase::kCutoverDone || state_.phase == Phase::kCompleted) {
      return Status::Invalid(fmt::format(
          "cancel refused: the migration is {}; cancel is possible before a cutover or after a "
          "rollback",
          PhaseName(state_.phase)));
    }
    return End(Phase::kCancelled);
  }

  // Completed or cancelled: nothing runs or reads a feed for it any more, and once that is
  // journalled its stores are free for another migration.
  Status End(Phase phase) {
    StopAll();
    DropConsumers();
    state_.phase = phase;
    Status saved = Save();
    if (saved.ok()) ReleaseClaims();
    return saved;
  }

  Result<uint64_t> Cleanup() {
    if (state_.phase != Phase::kCompleted) {
      return Status::Invalid(fmt::format("cleanup needs a completed migration (phase is {})",
                                         PhaseName(state_.phase)));
    }
    // The sources were let go at completion (ReleaseClaims): still open if the node serves them.
    MigrationSpec spec = spec_;
    for (Participant& p : spec.sources) {
      if (auto it = released_sources_.find(p.shard); !p.store && it != released_sources_.end())
        p.store = it->second.lock();
    }
    return internal::DeleteSourceCopies(spec, ranges_);
  }

  Progress progress() const {
    Progress p;
    p.phase = state_.phase;
    p.rows_to_copy = rows_to_copy_.load();
    p.rows_copied = rows_copied_.load();
    p.copy_rows_per_s = copy_rate_.load();
    for (const auto& r : forward_) p.lag = std::max(p.lag, r->lag());
    for (const auto& r : reverse_) p.lag = std::max(p.lag, r->lag());
    p.epoch = spec_.map->Current()->epoch();
    return p;
  }

  Phase phase() const { return state_.phase; }

  bool WaitForLag(uint64_t lag, std::chrono::milliseconds timeout) const {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (progress().lag <= lag) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return progress().lag <= lag;
  }

  ~Impl() { StopAll(); }

 private:
  static std::vector<std::string> ShardsWithout(const shard::ShardMap& map,
                                                const std::vector<std::string>& removed) {
    std::vector<std::string> out;
    for (const auto& s : map.shards()) {
      if (std::find(removed.begin(), removed.end(), s.name) == removed.end()) out.push_back(s.name);
    }
    return out;
  }

  // A new id: the rules first (nothing changes on a refusal), then the claims, then the journal
  // recording the spec and the fresh targets.
  Status Create() {
    auto map = spec_.map->Current();
    if (Status s = internal::CheckNewMigration(spec_, *map); !s.ok()) return s;
    if (Status s = internal::ClaimStores(spec_); !s.ok()) return s;
    state_.sources = internal::Names(spec_.sources);
    state_.targets = internal::Names(spec_.targets);
    state_.fresh_targets = state_.targets;
    Status saved = Save();
    if (!saved.ok()) (void)internal::ReleaseStores(spec_);
    return saved;
  }

  // Called once the migration is completed or cancelled: it never touches its stores again, so
  // it also lets go of them (a store a reload retired then closes instead of staying open for
  // the process's life).
  void ReleaseClaims() {
    if (Status s = internal::ReleaseStores(spec_); !s.ok()) {
      spdlog::warn("migration {}: cannot release the stores' claims: {}", spec_.id, s.ToString());
      return;
    }
    for (auto* side : {&spec_.sources, &spec_.targets}) {
      for (Participant& p : *side) {
        // A source is remembered weakly for Cleanup: open while the node still serves it; a
        // remote one is only a connection, kept.
        if (side == &spec_.sources) released_sources_[p.shard] = p.store;
        if (side == &spec_.sources && !p.node.empty()) remote_sources_.push_back(p.store);
        p.store.reset();
        p.gate.reset();
      }
    }
  }

  // The feed position of `p` when it last became an owner by a swap (0: never).
  uint64_t SwapPosition(const Participant& p) const {
    auto it = state_.reverse_from.find(p.shard);
    return it == state_.reverse_from.end() ? 0 : it->second;
  }

  // A repeated cutover or rollback: the state it left.
  CutoverReport Done() const {
    CutoverReport report;
    report.epoch = spec_.map->Current()->epoch();
    if (!state_.fence.empty()) report.fence = state_.fence.begin()->second;
    return report;
  }

  std::string Stream(const Participant& from, const Participant& to, bool forward) const {
    return fmt::format("migrate:{}:{}:{}>{}", spec_.id, forward ? "fwd" : "rev", from.shard,
                       to.shard);
  }
  std::string Consumer(const Participant& to, bool forward) const {
    return fmt::format("migrate:{}:{}:{}", spec_.id, forward ? "fwd" : "rev", to.shard);
  }

  // Appends the kMoved marker (store/change_feed.h) to each old owner's feed, right after its
  // fence: {"epoch":E,"to":{new owner: its first sequence after the fence}}. Idempotent: a feed
  // already holding the marker after its fence is left alone.
  Status MarkMoved(const std::vector<Participant>& from, const std::vector<Participant>& to,
                   uint64_t epoch) {
    JsonObject positions;
    for (const Participant& p : to) positions.Add(p.shard, state_.reverse_from[p.shard] + 1);
    std::string value = JsonObject().Add("epoch", epoch).Add("to", positions).str();
    for (const Participant& p : from) {
      uint64_t fence = state_.fence[p.shard];
      if (p.store->feed().LastSequence() > fence) {
        auto after = p.store->feed().ReadChanges(fence + 1, 1);
        if (after.ok() && !after->empty() && after->front().op == store::ChangeOp::kMoved &&
            after->front().value == value) {
          continue;  // already marked
        }
      }
      store::ChangeRecord marker;
      marker.op = store::ChangeOp::kMoved;
      marker.version = epoch;
      marker.value = value;
      if (Status s =
              p.store->ApplyReplicated(fmt::format("migrate:{}:moved", spec_.id), {marker}, epoch);
          !s.ok())
        return s;
    }
    return Status::Ok();
  }

  Status Save() {
    Status saved = internal::WriteJournal(spec_.journal_path, state_);
    if (saved.ok() && spec_.on_progress && state_.phase != published_phase_) {
      published_phase_ = state_.phase;
      spec_.on_progress(progress());
    }
    return saved;
  }

  // Empties the targets' ranges, then copies each source range into them; P0 first.
  Status Copy() {
    auto started = Clock::now();
    rows_copied_ = 0;
    uint64_t total = 0;
    for (const Participant& source : spec_.sources) {
      for (const Participant& target : spec_.targets) {
        auto range = internal::Intersect(ranges_[source.shard], ranges_[target.shard]);
        if (!range) continue;
        Status counted = source.store->ScanRange("", *range, [&](const store::EntityRecord&) {
          ++total;
          return true;
        });
        if (!counted.ok()) return counted;
      }
    }
    rows_to_copy_ = total;
    for (const Participant& source : spec_.sources) {
      uint64_t p0 = source.store->feed().LastSequence();
      if (p0 == ~0ull)  // a remote source's node did not answer
        return Status::Unavailable(
            fmt::format("copy: cannot read the feed position of source {} on node {}", source.shard,
                        source.node));
      state_.p0[source.shard] = p0;
      for (const Participant& target : spec_.targets) {
        auto range = internal::Intersect(ranges_[source.shard], ranges_[target.shard]);
        if (!range) continue;
        std::string consumer = Consumer(target, true) + ":" + source.shard;
        (void)source.store->feed().RemoveConsumer(consumer);
        if (Status s = source.store->feed().RegisterConsumer(consumer, p0 + 1); !s.ok()) return s;
        std::string stream = Stream(source, target, true);
        // Leftovers of an earlier, interrupted copy.
        if (Status s = internal::ClearFreshTarget(spec_, state_, target, *range, stream); !s.ok())
          return s;
        std::vector<store::ChangeRecord> batch;
        Status failed;
        Status copied = source.store->ScanRange("", *range, [&](const store::EntityRecord& r) {
          batch.push_back({0, r.ksid, r.kind, r.id, store::ChangeOp::kSave, r.version, r.value,
                           r.expires_at_ms, false});
          if (batch.size() >= spec_.copy_batch) {
            failed = target.store->ApplyReplicated(stream, batch, 0, /*assume_absent=*/true);
            rows_copied_ += batch.size();
            batch.clear();
            if (!failed.ok()) return false;
            internal::CrashPoint("migrate:copying");
            ReportCopy(started);
            Throttle(started, rows_copied_);
          }
          return true;
        });
        if (!copied.ok()) return copied;
        if (!failed.ok()) return failed;
        rows_copied_ += batch.size();
        if (Status s = target.store->ApplyReplicated(stream, batch, p0, /*assume_absent=*/true);
            !s.ok())
          return s;
        internal::CrashPoint("migrate:copying");
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    copy_rate_ = seconds > 0 ? rows_copied_.load() / seconds : 0;
    return Status::Ok();
  }

  void ReportCopy(Clock::time_point started) {
    auto now = Clock::now();
    double seconds = std::chrono::duration<double>(now - started).count();
    copy_rate_ = seconds > 0 ? rows_copied_.load() / seconds : 0;
    if (!spec_.on_progress || now - last_progress_ < std::chrono::milliseconds(250)) return;
    last_progress_ = now;
    spec_.on_progress(progress());
  }

  void StartForward() { StartReplicators(true); }
  // Reverse replication reads the targets' feeds (a remote target's over the network, with its
  // consumer kept on its node).
  void StartReverse() { StartReplicators(false); }

  // One replicator per overlapping pair, from each `from` shard's feed into `to`: forward from the
  // sources to the targets, reverse from the targets to the sources. A reverse consumer is
  // registered here, at the position the swap recorded (the forward ones exist since the copy).
  void StartReplicators(bool forward) {
    auto& replicators = forward ? forward_ : reverse_;
    if (!replicators.empty()) return;
    auto& pairs = forward ? forward_pairs_ : reverse_pairs_;
    for (const Participant& from : forward ? spec_.sources : spec_.targets) {
      for (const Participant& to : forward ? spec_.targets : spec_.sources) {
        auto range = internal::Intersect(ranges_[from.shard], ranges_[to.shard]);
        if (!range) continue;
        std::string consumer = Consumer(to, forward) + ":" + from.shard;
        if (!forward && !from.store->feed().Consumers().count(consumer))
          (void)from.store->feed().RegisterConsumer(consumer, state_.reverse_from[from.shard] + 1);
        auto r = std::make_unique<internal::Replicator>(
            Stream(from, to, forward), consumer, from.store, to.store, *range, SwapPosition(from));
        r->Start();
        replicators.push_back(std::move(r));
        pairs.emplace_back(from.shard, to.shard);
      }
    }
  }

  // Keeps the copy under spec_.max_rows_per_s: sleeps until `copied` rows are due.
  void Throttle(Clock::time_point started, uint64_t copied) const {
    if (spec_.max_rows_per_s == 0) return;
    std::this_thread::sleep_until(
        started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                      static_cast<double>(copied) / spec_.max_rows_per_s)));
  }

  void StopAll() {
    for (auto& r : forward_) r->Stop();
    for (auto& r : reverse_) r->Stop();
    forward_.clear();
    forward_pairs_.clear();
    reverse_.clear();
    reverse_pairs_.clear();
  }

  void DropConsumers() {
    for (const Participant& source : spec_.sources) {
      for (const Participant& target : spec_.targets) {
        (void)source.store->feed().RemoveConsumer(Consumer(target, true) + ":" + source.shard);
        (void)target.store->feed().RemoveConsumer(Consumer(source, false) + ":" + target.shard);
      }
    }
  }

  // Closes the gates of `from`, drains their writes and waits until every replicator has carried
  // all they committed: the positions returned are the fence, per shard of `from`.
  Result<std::map<std::string, uint64_t>> Fence(
      std::vector<Participant>& from,
      std::vector<std::unique_ptr<internal::Replicator>>& replicators, bool forward) {
    const char* step = forward ? "cutover" : "rollback";
    for (Participant& p : from) p.gate->Close();
    for (Participant& p : from) {
      if (!p.gate->Drain(spec_.cutover.drain_timeout)) {
        return Status::Timeout(
            fmt::format("{} abandoned: writes on shard {} did not drain", step, p.shard));
      }
    }
    // Only now, with no write in flight, is the fence meaningful.
    std::map<std::string, uint64_t> fence;
    for (Participant& p : from) {
      fence[p.shard] = p.store->feed().LastSequence();
      if (fence[p.shard] == ~0ull)  // a remote store's node did not answer
        return Status::Unavailable(fmt::format(
            "{} abandoned: cannot read the feed position of {} on node {}", step, p.shard, p.node));
    }
    auto& pairs = forward ? forward_pairs_ : reverse_pairs_;
    for (size_t i = 0; i < replicators.size(); ++i) {
      uint64_t wanted = fence[pairs[i].first];
      if (!replicators[i]->WaitUntil(wanted, spec_.cutover.fence_timeout)) {
        if (Status failed = replicators[i]->failure(); !failed.ok()) return failed;
        return Status::Timeout(fmt::format("{} abandoned: {} did not reach the fence {} in time",
                                           step, replicators[i]->stream(), wanted));
      }
    }
    // A gate on another node is open again if that node restarted meanwhile: writes after the
    // fence may have landed there, so the fence means nothing.
    for (Participant& p : from) {
      if (p.gate->state() != shard::WriteGate::State::kClosed)
        return Status::Unavailable(
            fmt::format("{} abandoned: the write gate of {} on node {} is no longer closed (the "
                        "node restarted or cannot be asked)",
                        step, p.shard, p.node));
    }
    return fence;
  }

  // The feed positions of `participants` (the new owners: the reverse direction starts after
  // them); unavailable when a remote one's node cannot be asked (its feed answers UINT64_MAX).
  static Result<std::map<std::string, uint64_t>> FeedPositions(
      std::vector<Participant>& participants, const char* step) {
    std::map<std::string, uint64_t> positions;
    for (Participant& p : participants) {
      positions[p.shard] = p.store->feed().LastSequence();
      if (positions[p.shard] == ~0ull)
        return Status::Unavailable(fmt::format(
            "{} abandoned: cannot read the feed position of {} on node {}", step, p.shard, p.node));
    }
    return positions;
  }

  // `map` with `from`'s ranges replaced by `to`'s, one epoch later.
  static Result<shard::ShardMap> NextMap(const shard::ShardMap& map,
                                         const std::vector<Participant>& from,
                                         const std::vector<Participant>& to) {
    std::vector<std::string> from_names, ranges;
    for (const Participant& p : from) from_names.push_back(p.shard);
    for (const Participant& p : to) ranges.push_back(p.shard);
    for (const auto& name : ShardsWithout(map, from_names)) ranges.push_back(name);
    return shard::ShardMap::Make(map.epoch() + 1, ranges, map.shard_keys());
  }

  // Moves ownership from `from` to `to`; `replicators` carry from -> to.
  Result<CutoverReport> Switch(std::vector<Participant>& from, std::vector<Participant>& to,
                               std::vector<std::unique_ptr<internal::Replicator>>& replicators,
                               bool forward) {
    const char* step = forward ? "cutover" : "rollback";
    for (const auto& r : replicators) {
      if (r->lag() > spec_.cutover.max_lag) {
        return Status::Unavailable(fmt::format("{} refused: replication lag {} is above {}", step,
                                               r->lag(), spec_.cutover.max_lag),
                                   JsonObject().Add("lag", r->lag()).str());
      }
    }
    auto map = spec_.map->Current();
    const Phase resting = state_.phase;
    state_.phase = Phase::kCutover;
    state_.back = !forward;
    state_.epoch_before = map->epoch();
    if (Status s = Save(); !s.ok()) return s;
    internal::CrashPoint(forward ? "migrate:cutover" : "migrate:rollback");

    auto started = Clock::now();
    auto abandon = [&](Status why) -> Status {
      for (Participant& p : from) p.gate->Open();
      state_.phase = resting;
      (void)Save();
      spdlog::warn("migration {}: {} abandoned: {}", spec_.id, step, why.ToString());
      return why;
    };
    auto fence = Fence(from, replicators, forward);
    if (!fence.ok()) return abandon(fence.status());
    // The new owners' own feeds so far hold only replicated changes: the reverse direction
    // starts after them.
    auto to_positions = FeedPositions(to, step);
    if (!to_positions.ok()) return abandon(to_positions.status());
    // Journaled before the map swap: a coordinator that dies right after the swap resumes with
    // the positions the reverse replication must start from.
    for (const auto& [name, position] : *fence) state_.fence[name] = position;
    for (const auto& [name, position] : *to_positions) state_.reverse_from[name] = position;
    if (Status s = Save(); !s.ok()) return abandon(s);
    internal::CrashPoint(forward ? "migrate:fenced" : "migrate:fenced_back");

    auto next = NextMap(*map, from, to);
    if (!next.ok()) return abandon(next.status());
    // The new owners must take writes the moment the map names them (a retired gate left from an
    // earlier switch would refuse them). Before the swap their guards refuse by the map anyway.
    for (Participant& p : to) {
      p.gate->Open();
      if (p.gate->state() != shard::WriteGate::State::kOpen)  // a remote one: its node's answer
        return abandon(Status::Unavailable(fmt::format(
            "{} abandoned: cannot open the write gate of {} on node {}", step, p.shard, p.node)));
    }
    if (Status s = spec_.map->CompareAndSwap(map->epoch(), std::move(next).value()); !s.ok()) {
      return abandon(Status(
          s.code(),
          fmt::format("{} abandoned: the shard map changed meanwhile: {}", step, s.message())));
    }
    // Point of no return: the map names the new owners.
    internal::CrashPoint(forward ? "migrate:map_swapped" : "migrate:map_swapped_back");
    state_.epoch_after = map->epoch() + 1;
    // Feed consumers of the old owners are told where to continue (before their gates retire,
    // so the marker directly follows the fence).
    if (Status s = MarkMoved(from, to, state_.epoch_after); !s.ok()) {
      spdlog::error("migration {}: cannot append the move marker: {}", spec_.id, s.ToString());
    }
    state_.phase = forward ? Phase::kCutoverDone : Phase::kRolledBack;
    Status saved = Save();
    internal::CrashPoint(forward ? "migrate:cutover_done" : "migrate:rolled_back");
    for (Participant& p : from) p.gate->Retire();
    CutoverReport report;
    report.pause_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    report.fence = fence->begin()->second;
    report.epoch = state_.epoch_after;
    // Replication now runs the other way, so the switch can be undone.
    StopAll();
    if (forward) {
      StartReverse();
    } else {
      StartForward();
    }
    if (!saved.ok()) return saved;
    return report;
  }

  MigrationSpec spec_;
  // The sources' stores after ReleaseClaims, by shard, for Cleanup.
  std::map<std::string, std::weak_ptr<store::EntityStore>> released_sources_;
  std::vector<std::shared_ptr<store::EntityStore>> remote_sources_;  // sources on other nodes
  std::map<std::string, store::KsidRange> ranges_;
  internal::JournalState state_;
  std::vector<std::unique_ptr<internal::Replicator>> forward_, reverse_;
  std::vector<std::pair<std::string, std::string>> forward_pairs_,
      reverse_pairs_;  // (from, to) shard names
  std::atomic<uint64_t> rows_to_copy_{0};
  std::atomic<uint64_t> rows_copied_{0};
  std::optional<Phase> published_phase_;
  Clock::time_point last_progress_{};
  std::atomic<double> copy_rate_{0};
};

Result<std::unique_ptr<Migration>> Migration::Open(MigrationSpec spec) {
  auto impl = std::make_unique<Impl>(std::move(spec));
  if (Status s = impl->Validate(); !s.ok()) return s;
  if (Status s = impl->Resume(); !s.ok()) return s;
  return std::unique_ptr<Migration>(new Migration(std::move(impl)));
}

Migration::Migration(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Migration::~Migration() = default;
Status Migration::Start() { return impl_->Start(); }
Result<VerifyReport> Migration::Verify() { return impl_->Verify(); }
Result<CutoverReport> Migration::Cutover() { return impl_->Cutover(); }
Result<CutoverReport> Migration::Rollback() { return impl_->Rollback(); }
Status Migration::Complete() { return impl_->Complete(); }
Status Migration::Cancel() { return impl_->Cancel(); }
Result<uint64_t> Migration::Cleanup() { return impl_->Cleanup(); }
Progress Migration::progress() const { return impl_->progress(); }
Phase Migration::phase() const { return impl_->phase(); }
bool Migration::WaitForLag(uint64_t lag, std::chrono::milliseconds timeout) const {
  return impl_->WaitForLag(lag, timeout);
}

}  // namespace shardkit::migrate
