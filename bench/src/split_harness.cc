#include "split_harness.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

namespace shardkit::bench::split {

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

SteadyWriter::SteadyWriter(Call call, int writes_per_s) : call_(std::move(call)) {
  thread_ = std::thread([this, writes_per_s] { Run(writes_per_s); });
}

void SteadyWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

double SteadyWriter::LongestOverlapping(SteadyClock::time_point from, SteadyClock::time_point to) {
  std::lock_guard<std::mutex> lock(mu_);
  double longest = 0;
  for (const auto& [s, e] : writes_) {
    if (s <= to && e >= from)
      longest = std::max(longest, std::chrono::duration<double, std::milli>(e - s).count());
  }
  return longest;
}

std::vector<double> SteadyWriter::LatenciesStartedIn(SteadyClock::time_point from,
                                                     SteadyClock::time_point to) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> out;
  for (const auto& [s, e] : writes_) {
    if (s >= from && s <= to)
      out.push_back(std::chrono::duration<double, std::milli>(e - s).count());
  }
  return out;
}

std::string SteadyWriter::first_error() {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

void SteadyWriter::Run(int writes_per_s) {
  auto next = SteadyClock::now();
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / std::max(1, writes_per_s));
  for (uint64_t i = 0; !stop_; ++i) {
    next += interval;
    std::this_thread::sleep_until(next);
    std::string id = fmt::format("w{}", i % 50'000);
    std::string value = fmt::format("{}", i);
    Message m;
    m.SetString("store", "save")
        .SetString("kind", "entry")
        .SetObjectJson("ent", fmt::format(R"({{"id":"{}","v":"{}"}})", id, value));
    auto start = SteadyClock::now();
    auto r = call_(std::move(m));
    auto end = SteadyClock::now();
    std::lock_guard<std::mutex> lock(mu_);
    writes_.emplace_back(start, end);
    if (r.ok()) {
      acknowledged_[id] = value;
    } else {
      if (errors_++ == 0) first_error_ = r.status().ToString();
    }
  }
}

uint64_t CountLost(const Call& call, const std::map<std::string, std::string>& acknowledged) {
  uint64_t lost = 0;
  for (const auto& [id, value] : acknowledged) {
    Message m;
    m.SetString("store", "load").SetString("kind", "entry").SetString("id", id);
    auto r = call(std::move(m));
    rapidjson::Document d;
    if (r.ok()) {
      auto ent = r->GetObjectJson("ent").value_or("{}");
      d.Parse(ent.data(), ent.size());
    }
    if (!r.ok() || !d.IsObject() || !d.HasMember("v") || value != d["v"].GetString()) ++lost;
  }
  return lost;
}

}  // namespace shardkit::bench::split
