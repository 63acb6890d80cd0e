#include "shardkit/cache/feed_follower.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>

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

Status FeedFollower::Load() {
  if (options_.state_path.empty() || !std::filesystem::exists(options_.state_path))
    return Status::Ok();
  std::ifstream in(options_.state_path);
  std::string name;
  uint64_t position;
  while (in >> std::quoted(name) >> position) positions_[name] = position;
  return Status::Ok();
}

Status FeedFollower::Save() const {
  if (options_.state_path.empty()) return Status::Ok();
  // Write-then-rename: a crash leaves the old file or the new one, never half of one.
  std::string tmp = options_.state_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [name, position] : positions_)
      out << std::quoted(name) << ' ' << position << '\n';
    out.flush();
    if (!out) return Status::Internal(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.state_path, ec);
  if (ec) return Status::Internal(fmt::format("cannot rename {}: {}", tmp, ec.message()));
  return Status::Ok();
}

Result<uint64_t> FeedFollower::PollOnce() {
  uint64_t applied = 0;
  for (const FeedSource& source : options_.sources) {
    auto known = positions_.find(source.name);
    if (known == positions_.end()) {
      // New source: start at the feed's end (an empty cache has nothing to invalidate).
      Message probe = source.request;
      probe.SetUint("limit", 1);
      auto r = bus_.ActAndWait(std::move(probe), std::chrono::seconds(10));
      if (!r.ok())
        return Status(r.status().code(),
                      fmt::format("feed {}: {}", source.name, r.status().message()));
      positions_[source.name] = r->GetUint("last").value_or(0) + 1;
      if (Status s = Save(); !s.ok()) return s;
      continue;
    }
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
        Message probe = source.request;
        probe.Remove("from");
        probe.SetUint("limit", 1);
        auto tail = bus_.ActAndWait(std::move(probe), std::chrono::seconds(10));
        if (!tail.ok()) return tail.status();
        positions_[source.name] = tail->GetUint("last").value_or(0) + 1;
        if (Status s = Save(); !s.ok()) return s;
        break;
      }
      if (!r.ok())
        return Status(r.status().code(),
                      fmt::format("feed {}: {}", source.name, r.status().message()));
      auto changes = ParseJson(r->GetArrayJson("changes").value_or("[]"), "changes");
      if (!changes.ok() || !changes->IsArray())
        return Status::Internal(fmt::format("feed {}: malformed answer", source.name));
      if (changes->Empty()) break;
      uint64_t last_seq = 0;
      for (const auto& change : changes->GetArray()) {
        cache_->Invalidate(change["kind"].GetString(), change["id"].GetString());
        last_seq = change["seq"].GetUint64();
        ++applied;
      }
      positions_[source.name] = last_seq + 1;
      if (Status s = Save(); !s.ok()) return s;
      if (changes->Size() < options_.batch) break;
    }
  }
  return applied;
}

void FeedFollower::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    while (!stop_) {
      auto r = PollOnce();
      if (!r.ok()) spdlog::warn("feed follower: {}", r.status().ToString());
      for (int waited = 0; waited < options_.poll_interval_ms && !stop_; waited += 10) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  });
}

void FeedFollower::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace shardkit::cache
