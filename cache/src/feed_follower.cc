#include "shardkit/cache/feed_follower.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <shardkit/message/codec.h>
#include <shardkit/message/json.h>

namespace shardkit::cache {

FeedFollower::FeedFollower(Bus& bus, std::shared_ptr<EntityCache> cache,
                           FeedFollowerOptions options)
    : bus_(bus), cache_(std::move(cache)), options_(std::move(options)) {
  if (Status s = Load(); !s.ok()) spdlog::warn("feed follower: {}", s.ToString());
}

FeedFollower::~FeedFollower() { Stop(); }

uint64_t FeedFollower::position(const std::string& source) const {
  auto it = positions_.find(source);
  return it == positions_.end() ? 0 : it->second;
}

std::vector<std::string> FeedFollower::sources() const {
  std::vector<std::string> out;
  for (const auto& s : options_.sources) {
    if (!retired_.count(s.name)) out.push_back(s.name);
  }
  for (const auto& s : added_) {
    if (!retired_.count(s.name)) out.push_back(s.name);
  }
  return out;
}

// The state file: {"positions":{source:next},"added":[{"name":…,"request":{…}}],"retired":[…]}.
// The first format (lines of `"name" position`) is still read.
Status FeedFollower::Load() {
  if (options_.state_path.empty() || !std::filesystem::exists(options_.state_path))
    return Status::Ok();
  std::ifstream in(options_.state_path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  if (text.empty() || text[0] != '{') {
    std::istringstream lines(text);
    std::string name;
    uint64_t position;
    while (lines >> std::quoted(name) >> position) positions_[name] = position;
    return Status::Ok();
  }
  auto doc = ParseJson(text, options_.state_path);
  if (!doc.ok()) return doc.status();
  if (doc->HasMember("positions") && (*doc)["positions"].IsObject()) {
    for (const auto& m : (*doc)["positions"].GetObject()) {
      if (m.value.IsUint64()) positions_[m.name.GetString()] = m.value.GetUint64();
    }
  }
  if (doc->HasMember("added") && (*doc)["added"].IsArray()) {
    for (const auto& a : (*doc)["added"].GetArray()) {
      if (!a.IsObject() || !a.HasMember("name") || !a.HasMember("request")) continue;
      auto request = ParseMessage(ToJsonText(a["request"]));
      if (!request.ok()) return request.status();
      added_.push_back({a["name"].GetString(), std::move(request).value()});
    }
  }
  if (doc->HasMember("resume") && (*doc)["resume"].IsObject()) {
    for (const auto& m : (*doc)["resume"].GetObject()) {
      if (m.value.IsObject() && m.value.HasMember("epoch") && m.value["epoch"].IsUint64() &&
          m.value.HasMember("position") && m.value["position"].IsUint64())
        resume_[m.name.GetString()] = {m.value["epoch"].GetUint64(),
                                       m.value["position"].GetUint64()};
    }
  }
  if (doc->HasMember("retired") && (*doc)["retired"].IsArray()) {
    for (const auto& r : (*doc)["retired"].GetArray()) {
      if (r.IsString()) retired_.insert(r.GetString());
    }
  }
  return Status::Ok();
}

Status FeedFollower::Save() const {
  if (options_.state_path.empty()) return Status::Ok();
  JsonObject positions, resume;
  for (const auto& [name, position] : positions_) positions.Add(name, position);
  for (const auto& [name, at] : resume_)
    resume.Add(name, JsonObject().Add("epoch", at.epoch).Add("position", at.position));
  std::string added = "[";
  for (size_t i = 0; i < added_.size(); ++i) {
    if (i) added += ',';
    added +=
        JsonObject().Add("name", added_[i].name).AddRaw("request", ToJson(added_[i].request)).str();
  }
  added += ']';
  std::string json = JsonObject()
                         .Add("positions", positions)
                         .AddRaw("added", added)
                         .AddRaw("retired", JsonStringArray({retired_.begin(), retired_.end()}))
                         .Add("resume", resume)
                         .str();
  // Write-then-rename: a crash leaves the old file or the new one, never half of one. No fsync:
  // it is saved after every batch, and a position lost to a crash only repeats invalidations.
  std::string tmp = options_.state_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json;
    out.flush();
    if (!out) return Status::Internal(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.state_path, ec);
  if (ec) return Status::Internal(fmt::format("cannot rename {}: {}", tmp, ec.message()));
  return Status::Ok();
}

Status FeedFollower::FollowMove(const FeedSource& source, std::string_view to_json,
                                uint64_t epoch) {
  auto to = ParseJson(to_json, "moved.to");
  if (!to.ok() || !to->IsObject())
    return Status::Internal(fmt::format("feed {}: malformed move marker", source.name));
  for (const auto& m : to->GetObject()) {
    if (!m.value.IsUint64()) continue;
    std::string shard = m.name.GetString();
    // Two old owners merging into one name the same new owner: follow it once.
    const FeedSource* known = nullptr;
    for (const auto& s : added_) {
      if (s.request.GetString("shard") == std::optional<std::string_view>(shard) &&
          !retired_.count(s.name))
        known = &s;
    }
    if (known) {
      // Already followed, and not yet at the marker of an older move that it still holds: when
      // it reaches that marker, it goes on from this move's position instead (StaleMarker).
      Resume& at = resume_[known->name];
      if (epoch > at.epoch) at = {epoch, m.value.GetUint64()};
      continue;
    }
    // Named after the configured source it descends from: a range that comes back (rollback)
    // is followed under its earlier name again.
    std::string root = source.name.substr(0, source.name.find('>'));
    FeedSource next{fmt::format("{}>{}", root, shard), source.request};
    next.request.SetString("shard", shard);
    retired_.erase(next.name);
    positions_[next.name] = m.value.GetUint64();
    auto same = std::find_if(added_.begin(), added_.end(),
                             [&](const FeedSource& s) { return s.name == next.name; });
    if (same != added_.end()) {
      *same = std::move(next);
    } else {
      added_.push_back(std::move(next));
    }
  }
  retired_.insert(source.name);
  positions_.erase(source.name);
  spdlog::info("feed {}: the shard moved; following {}", source.name, to_json);
  return Save();
}

std::optional<uint64_t> FeedFollower::StaleMarker(const std::string& source, uint64_t epoch) {
  auto at = resume_.find(source);
  if (at == resume_.end()) return std::nullopt;
  if (epoch != 0 && epoch >= at->second.epoch) {
    resume_.erase(at);  // this marker is the newer move itself, or later: follow it
    return std::nullopt;
  }
  uint64_t position = at->second.position;
  resume_.erase(at);
  spdlog::info("feed {}: a move marker older than epoch {} skipped; reading on at {}", source,
               epoch, position);
  return position;
}

Result<uint64_t> FeedFollower::PollOnce() {
  uint64_t applied = 0;
  // Moves add sources while we read: walk a snapshot, then the sources added meanwhile.
  for (size_t next = 0;; ++next) {
    std::vector<FeedSource> all = options_.sources;
    all.insert(all.end(), added_.begin(), added_.end());
    if (next >= all.size()) break;
    const FeedSource source = all[next];
    if (retired_.count(source.name)) continue;
    if (positions_.find(source.name) == positions_.end()) {
      // New source: start at the feed's end. What the cache filled before then was never
      // followed, so it goes; cleared after the end was read, so a load that fills later read
      // the store at or past that end (one in flight now is marked stale and does not fill).
      if (Status s = StartAtTail(source); !s.ok()) return s;
      cache_->Clear();
      continue;
    }
    auto read = ReadSource(source);
    if (!read.ok()) return read.status();
    applied += *read;
  }
  return applied;
}

Status FeedFollower::StartAtTail(const FeedSource& source) {
  Message probe = source.request;
  probe.Remove("from");
  probe.SetUint("limit", 1);
  auto r = bus_.ActAndWait(std::move(probe), std::chrono::seconds(10));
  if (!r.ok())
    return Status(r.status().code(), fmt::format("feed {}: {}", source.name, r.status().message()));
  positions_[source.name] = r->GetUint("last").value_or(0) + 1;
  return Save();
}

Result<uint64_t> FeedFollower::ReadSource(const FeedSource& source) {
  uint64_t applied = 0;
  while (true) {
    Message request = source.request;
    request.SetUint("from", positions_[source.name]);
    request.SetUint("limit", options_.batch);
    auto r = bus_.ActAndWait(std::move(request), std::chrono::seconds(10));
    if (!r.ok() && r.status().code() == Code::kNotFound) {
      // Trimmed past our position: changes were missed. Start over from an empty cache.
      spdlog::warn("feed {}: position {} was trimmed; clearing the cache", source.name,
                   positions_[source.name]);
      cache_->Clear();
      positions_.erase(source.name);
      if (Status s = StartAtTail(source); !s.ok()) return s;
      return applied;
    }
    if (!r.ok())
      return Status(r.status().code(),
                    fmt::format("feed {}: {}", source.name, r.status().message()));
    auto changes = ParseJson(r->GetArrayJson("changes").value_or("[]"), "changes");
    if (!changes.ok() || !changes->IsArray())
      return Status::Internal(fmt::format("feed {}: malformed answer", source.name));
    if (changes->Empty()) return applied;
    uint64_t last_seq = 0;
    bool moved = false, stale = false;
    for (const auto& change : changes->GetArray()) {
      std::string_view op = change["op"].GetString();
      if (op == "moved") {
        const auto& ent = change["ent"];
        const uint64_t epoch = ent.IsObject() && ent.HasMember("epoch") && ent["epoch"].IsUint64()
                                   ? ent["epoch"].GetUint64()
                                   : 0;
        if (auto resume = StaleMarker(source.name, epoch)) {
          positions_[source.name] = std::max(*resume, change["seq"].GetUint64() + 1);
          stale = true;
          break;
        }
        // Everything before the marker is applied; the rest of this feed is not ours.
        positions_[source.name] = change["seq"].GetUint64();
        std::string to = ent.IsObject() && ent.HasMember("to") ? ToJsonText(ent["to"]) : "";
        if (Status s = FollowMove(source, to, epoch); !s.ok()) return s;
        moved = true;
        break;
      }
      cache_->Invalidate(change["kind"].GetString(), change["id"].GetString());
      if (options_.on_change) {
        options_.on_change(change["kind"].GetString(), change["id"].GetString(), op,
                           change["version"].GetUint64());
      }
      last_seq = change["seq"].GetUint64();
      ++applied;
    }
    if (moved) return applied;
    if (stale) {
      if (Status s = Save(); !s.ok()) return s;
      continue;  // read on from where the newer move said
    }
    positions_[source.name] = last_seq + 1;
    if (Status s = Save(); !s.ok()) return s;
    if (changes->Size() < options_.batch) return applied;
  }
}

void FeedFollower::WaitForChange() {
  const auto start = std::chrono::steady_clock::now();
  size_t sent = 0;
  {
    std::lock_guard lock(wake_->mu);
    wake_->answered = 0;
    wake_->changed = false;
  }
  std::vector<FeedSource> all = options_.sources;
  all.insert(all.end(), added_.begin(), added_.end());
  for (const FeedSource& source : all) {
    auto known = positions_.find(source.name);
    if (retired_.count(source.name) || known == positions_.end()) continue;
    {
      // One long-poll per source: one still open from an earlier round answers in this one.
      std::lock_guard lock(wake_->mu);
      ++sent;
      if (!wake_->open.insert(source.name).second) continue;
    }
    Message request = source.request;
    request.SetUint("from", known->second);
    request.SetUint("limit", 1);
    request.SetInt("wait_ms", options_.wait_ms);
    request.meta().deadline = bus_.clock().NowMs() + options_.wait_ms + 10'000;
    bus_.Act(std::move(request), [wake = wake_, name = source.name](Result<Message> r) {
      {
        std::lock_guard lock(wake->mu);
        wake->open.erase(name);
        ++wake->answered;
        if (r.ok() && r->GetArrayJson("changes").value_or("[]") != "[]") wake->changed = true;
      }
      wake->cv.notify_all();
    });
  }
  std::unique_lock lock(wake_->mu);
  wake_->cv.wait(lock, [&] { return wake_->stop || wake_->changed || wake_->answered >= sent; });
  if (wake_->changed) return;
  // Nothing changed: a store that does not wait is not asked again before poll_interval_ms.
  wake_->cv.wait_until(lock, start + std::chrono::milliseconds(options_.poll_interval_ms),
                       [&] { return wake_->stop || wake_->changed; });
}

void FeedFollower::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  {
    std::lock_guard lock(wake_->mu);
    wake_->stop = false;
  }
  thread_ = std::thread([this] {
    while (!stop_) {
      auto r = PollOnce();
      if (!r.ok()) spdlog::warn("feed follower: {}", r.status().ToString());
      if (stop_ || (r.ok() && *r > 0)) continue;
      if (r.ok()) {
        WaitForChange();
      } else {
        std::unique_lock lock(wake_->mu);  // an error: try again after poll_interval_ms
        wake_->cv.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                           [&] { return wake_->stop; });
      }
    }
  });
}

void FeedFollower::Stop() {
  stop_ = true;
  {
    std::lock_guard lock(wake_->mu);
    wake_->stop = true;
  }
  wake_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace shardkit::cache
