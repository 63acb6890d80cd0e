// FixtureStore: a memory store and its store:* service, filled from {"kind":[entities…]}.
#include <shardkit/testing/fixture_store.h>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <sstream>

#include <shardkit/message/json.h>
#include <shardkit/store/service.h>
#include <shardkit/testing/capture.h>

namespace shardkit::testing {

FixtureStore::FixtureStore(FixtureOptions options) {
  store::StoreOptions store_options;
  store_options.clock = options.clock;
  store_options.shard_key_fields = std::move(options.shard_key_fields);
  store_options.purge_interval_ms = 0;  // deterministic: tests purge explicitly
  auto opened = store::NewMemoryStore(store_options);
  if (!opened.ok()) {
    // The memory backend cannot fail to open; if it ever does, say so loudly.
    ADD_FAILURE() << "FixtureStore: " << opened.status().ToString();
    return;
  }
  store_ = std::move(opened).value();
  service_ = store::MakeStoreService(store_);
}

FixtureStore FixtureStore::FromJson(std::string_view fixture_json, FixtureOptions options) {
  FixtureStore fixture(std::move(options));
  Status s = fixture.Load(fixture_json);
  if (!s.ok()) ADD_FAILURE() << "FixtureStore::FromJson: " << s.ToString();
  return fixture;
}

FixtureStore FixtureStore::FromFile(const std::string& path, FixtureOptions options) {
  FixtureStore fixture(std::move(options));
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "FixtureStore::FromFile: cannot read '" << path << "'";
    return fixture;
  }
  std::stringstream text;
  text << in.rdbuf();
  Status s = fixture.Load(text.str());
  if (!s.ok()) ADD_FAILURE() << "FixtureStore::FromFile: " << path << ": " << s.ToString();
  return fixture;
}

Status FixtureStore::Load(std::string_view fixture_json) {
  if (!store_) return Status::Internal("fixture store: no store");
  auto doc = ParseJson(fixture_json, "fixture");
  if (!doc.ok()) return doc.status();
  if (!doc->IsObject()) return Status::Invalid("fixture: must be an object of kind -> [entities]");
  for (const auto& member : doc->GetObject()) {
    std::string kind(member.name.GetString(), member.name.GetStringLength());
    if (!member.value.IsArray())
      return Status::Invalid(fmt::format("fixture.{}: must be an array of entities", kind));
    size_t index = 0;
    for (const auto& ent : member.value.GetArray()) {
      std::string where = fmt::format("fixture.{}[{}]", kind, index++);
      if (!ent.IsObject()) return Status::Invalid(where + ": must be an object");
      store::SaveRequest request;
      request.kind = kind;
      request.ent = ToJsonText(ent);
      auto saved = store_->Save(request);
      if (!saved.ok())
        return Status(saved.status().code(), where + ": " + saved.status().message());
    }
  }
  return Status::Ok();
}

Status FixtureStore::Register(Bus& bus, std::string_view pattern) const {
  if (!service_) return Status::Internal("fixture store: no store");
  return bus.Add(pattern, Recorded(bus, service_), fmt::format("fixture store ({})", pattern));
}

std::optional<std::string> FixtureStore::Get(std::string_view kind, std::string_view id) const {
  if (!store_) return std::nullopt;
  auto loaded = store_->Load(kind, id);
  if (!loaded.ok()) return std::nullopt;
  return std::move(loaded).value();
}

std::vector<std::string> FixtureStore::All(std::string_view kind) const {
  if (!store_) return {};
  store::Query query;
  query.kind = std::string(kind);
  auto page = store_->List(query);
  if (!page.ok()) return {};
  return std::move(page->items);
}

size_t FixtureStore::Count(std::string_view kind) const { return All(kind).size(); }

}  // namespace shardkit::testing
