// The demo's load: clients of the front's external HTTP listener, as users would be. They post,
// read entries (mostly recent ones), list a user's entries, search and read timelines once those
// exist; each request is counted in the step (iteration) it was sent in.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <shardkit/message/handler.h>
#include <shardkit/message/json.h>
#include <shardkit/services/client.h>

namespace microblog {

using shardkit::Message;
using shardkit::Result;
using shardkit::Status;
using SteadyClock = std::chrono::steady_clock;

inline constexpr const char* kWords[] = {
    "coffee",  "rain",   "music",  "code",   "river", "garden", "train", "book",  "night",
    "morning", "bread",  "cat",    "dog",    "moon",  "sea",    "bike",  "storm", "tea",
    "market",  "bridge", "winter", "summer", "song",  "film",   "lunch", "city",  "park",
    "letter",  "window", "forest", "paper",  "lamp",  "sky",    "stone", "glass", "field"};

struct StepFigures {
  std::string name;
  uint64_t requests = 0, errors = 0;
  std::vector<double> latencies_ms;
  std::map<std::string, uint64_t> by_op;
};

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1)))];
}

inline std::string EntryIdOf(const Message& reply) {
  auto doc = shardkit::ParseJson(reply.GetObjectJson("ent").value_or("{}"), "ent");
  if (!doc.ok() || !doc->IsObject() || !doc->HasMember("id") || !(*doc)["id"].IsString()) return "";
  return (*doc)["id"].GetString();
}

// Clients of the front's external HTTP listener, as users would be: they post, read entries
// (mostly recent ones), list a user's entries, search and read timelines once those exist.
class LoadGenerator {
 public:
  // `ids`: entries posted before it starts (reads need something to read).
  LoadGenerator(std::shared_ptr<shardkit::Handler> front, int users, int threads,
                std::vector<std::string> ids, std::string first_step)
      : front_(std::move(front)), users_(users), ids_(std::move(ids)) {
    StartStep(std::move(first_step));  // before any request: every request is counted
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  ~LoadGenerator() { Stop(); }

  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  void StartStep(std::string name) {
    std::lock_guard<std::mutex> lock(mu_);
    StepFigures step;
    step.name = std::move(name);
    steps_.push_back(std::move(step));
  }
  void EnableSearch() { search_ = true; }
  void EnableTimelines() { timelines_ = true; }
  void AddEntry(std::string id) {
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(std::move(id));
  }
  std::vector<StepFigures> steps() {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_samples_;
  }

 private:
  Message Next(std::mt19937& rng, std::string& op) {
    Message m;
    int dice = static_cast<int>(rng() % 100);
    std::string user = fmt::format("u{}", rng() % users_);
    if (dice < 15) {
      op = "post:entry";
      std::string text;
      for (int w = 0; w < 6; ++w)
        text += fmt::format("{}{}", w ? " " : "", kWords[rng() % std::size(kWords)]);
      return m.SetString("post", "entry").SetString("user", user).SetString("text", text);
    }
    if (search_ && dice < 30) {
      op = "search:query";
      return m.SetString("search", "query")
          .SetString("query", kWords[rng() % std::size(kWords)])
          .SetInt("limit", 10);
    }
    if (timelines_ && dice < 45) {
      op = "timeline:list";
      return m.SetString("timeline", "list").SetString("user", user).SetInt("limit", 10);
    }
    bool no_entries;
    {
      std::lock_guard<std::mutex> lock(mu_);
      no_entries = ids_.empty();
    }
    if (dice < 50 || no_entries) {
      op = "store:list,kind:entry";
      m.SetString("store", "list").SetString("kind", "entry");
      return m.SetObjectJson("q", fmt::format(R"({{"user":"{}","limit$":5}})", user));
    }
    op = "store:load,kind:entry";
    std::string id;
    {
      // Most reads are of recent entries (the hot set a cache is for), some of any entry.
      std::lock_guard<std::mutex> lock(mu_);
      size_t n = ids_.size();
      size_t pick = rng() % 10 < 8 ? n - 1 - rng() % std::min<size_t>(n, 64) : rng() % n;
      id = ids_[pick];
    }
    return m.SetString("store", "load").SetString("kind", "entry").SetString("id", id);
  }

  void Run(int t) {
    std::mt19937 rng(1234 + t);
    while (!stop_) {
      std::string op;
      Message m = Next(rng, op);
      auto start = SteadyClock::now();
      auto reply = shardkit::services::CallAndWait(*front_, std::move(m));
      double ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
      if (reply.ok() && op == "post:entry") {
        if (std::string id = EntryIdOf(*reply); !id.empty()) AddEntry(id);
      }
      std::lock_guard<std::mutex> lock(mu_);
      StepFigures& step = steps_.back();
      ++step.requests;
      ++step.by_op[op];
      step.latencies_ms.push_back(ms);
      if (!reply.ok()) {
        ++step.errors;
        if (error_samples_.size() < 5)
          error_samples_.push_back(
              fmt::format("{} ({}): {}", op, step.name, reply.status().ToString()));
      }
    }
  }

  std::shared_ptr<shardkit::Handler> front_;
  const int users_;
  std::atomic<bool> stop_{false}, search_{false}, timelines_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<StepFigures> steps_;          // guarded by mu_
  std::vector<std::string> ids_;            // guarded by mu_
  std::vector<std::string> error_samples_;  // guarded by mu_
};

}  // namespace microblog
