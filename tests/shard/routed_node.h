// A `shardkit serve` node for the routed store process tests: two shards (-80, 80-) of one engine
// (the test's parameter) and a shard router, `entry` sharded by `user`, clients over TCP.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <functional>
#include <string>
#include <vector>

#include "../services/serve_process.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/store/keyspace.h"

namespace shardkit::shard::testing {

using services::CallAndWait;
using services::ClientOptions;
using services::IoRuntime;
using services::testing::Client;
using services::testing::Msg;
using services::testing::ServeProcess;
using services::testing::TempDir;

// Users whose entries live on shard -80 (high=false) or 80- (high=true).
inline std::vector<std::string> UsersOnShard(bool high) {
  std::vector<std::string> users;
  for (int i = 0; users.size() < 4; ++i) {
    std::string user = fmt::format("user{}", i);
    if ((store::Ksid(user) >> 63 == 1) == high) users.push_back(user);
  }
  return users;
}

inline std::string Config(const std::string& data, const std::string& backend) {
  return fmt::format(R"(
[node]
name = "storage"
threads = 2
[[listener]]
url = "tcp://127.0.0.1:0"
[[service]]
name = "map"
type = "shard-map"
ranges = ["-80", "80-"]
shard_keys = {{ entry = "user" }}
path = "{0}/map.json"
[[service]]
name = "store-low"
type = "store"
backend = "{1}"
path = "{0}/low"
shard = "-80"
node_id = 2
[[service]]
name = "store-high"
type = "store"
backend = "{1}"
path = "{0}/high"
shard = "80-"
node_id = 3
[[service]]
name = "router"
type = "shard-router"
node_id = 1
)",
                     data, backend);
}

inline std::string EntOf(const Result<Message>& reply) {
  return reply.ok() ? std::string(reply->GetObjectJson("ent").value_or("")) : std::string();
}

inline uint64_t VersionOf(const std::string& ent) {
  rapidjson::Document d;
  d.Parse(ent.data(), ent.size());
  return d.IsObject() && d.HasMember("version") ? d["version"].GetUint64() : 0;
}

class RoutedStoreProcess : public ::testing::TestWithParam<std::string> {
 protected:
  void Start() {
    node_ = std::make_unique<ServeProcess>(
        dir_, dir_.Write("node.toml", Config(data_.path(), GetParam())));
    auto urls = node_->WaitReady();
    ASSERT_EQ(urls.size(), 1u);
    ClientOptions options;
    options.timeout = std::chrono::seconds(3);
    client_ = Client(runtime_, urls[0], options);
  }
  // SIGKILL, then `after_signal` (e.g. stopping the clients), then the wait for the exit.
  void Kill(const std::function<void()>& after_signal) {
    node_->Signal(SIGKILL);
    after_signal();
    EXPECT_EQ(node_->WaitExit(std::chrono::seconds(10)), 128 + SIGKILL);
    node_.reset();
  }
  Result<Message> Act(const std::string& json, const std::string& key = {}) {
    Message m = Msg(json);
    m.meta().idempotency_key = key;
    return CallAndWait(*client_, std::move(m));
  }
  // Every entity of `kind`, following the list's cursor from page to page.
  std::vector<std::string> List(const std::string& kind) {
    std::vector<std::string> out;
    std::string cursor;
    do {
      JsonObject q;
      if (!cursor.empty()) q.Add("cursor$", cursor);
      Message list;
      list.SetString("store", "list").SetString("kind", kind).SetObjectJson("q", q.str());
      auto reply = CallAndWait(*client_, std::move(list));
      EXPECT_TRUE(reply.ok()) << reply.status().ToString();
      if (!reply.ok()) return out;
      rapidjson::Document items;
      auto text = reply->GetArrayJson("items").value_or("[]");
      items.Parse(text.data(), text.size());
      for (const auto& item : items.GetArray()) out.push_back(ToJsonText(item));
      cursor = std::string(reply->GetString("cursor").value_or(""));
    } while (!cursor.empty());
    return out;
  }

  TempDir dir_, data_;
  IoRuntime runtime_{1};
  std::unique_ptr<ServeProcess> node_;
  std::shared_ptr<Handler> client_;
};

}  // namespace shardkit::shard::testing
