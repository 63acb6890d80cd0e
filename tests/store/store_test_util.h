// Shared helpers of the store tests: temporary directories, the backend factories the typed
// conformance suite runs against, and JSON accessors.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <shardkit/message/clock.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::store::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "shardkit-store-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One factory per backend. A new backend joins the conformance suite by adding a struct like
// these to StoreBackends below.
struct MemoryBackend {
  static constexpr const char* kName = "memory";
  static constexpr bool kPersistent = false;
  static Result<std::unique_ptr<EntityStore>> Open(const StoreOptions& o) {
    return NewMemoryStore(o);
  }
};
struct RocksDbBackend {
  static constexpr const char* kName = "rocksdb";
  static constexpr bool kPersistent = true;
  static Result<std::unique_ptr<EntityStore>> Open(const StoreOptions& o) {
    return OpenRocksDbStore(o);
  }
};
struct SqliteBackend {
  static constexpr const char* kName = "sqlite";
  static constexpr bool kPersistent = true;
  static Result<std::unique_ptr<EntityStore>> Open(const StoreOptions& o) {
    return OpenSqliteStore(o);
  }
};
using StoreBackends = ::testing::Types<MemoryBackend, RocksDbBackend, SqliteBackend>;
// The backends that keep data across a reopen (tests of durability run on these only).
using PersistentBackends = ::testing::Types<RocksDbBackend, SqliteBackend>;

struct BackendName {
  template <typename Backend>
  static std::string GetName(int) {
    return Backend::kName;
  }
};

// A store of backend B over a temp dir, with a manual clock and no background purge.
template <typename B>
class StoreFixture : public ::testing::Test {
 public:  // free helper functions of the tests take the fixture
  void SetUp() override {
    options_.path = dir_.path() + "/store";
    options_.clock = &clock_;
    // The default durability (kGroup: background WAL syncs); crash_test.cc covers kSync.
    options_.purge_interval_ms = 0;
    options_.rocksdb.block_cache_bytes = size_t{8} << 20;
    options_.sqlite.cache_kib_per_connection = 2048;
    Open();
  }
  void Open() {
    auto opened = B::Open(options_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void Reopen() {
    store_.reset();
    Open();
  }
  EntityStore& store() { return *store_; }
  ChangeFeed& feed() { return store_->feed(); }

  // Saves and expects success; returns the stored JSON.
  std::string MustSave(std::string kind, std::string ent, std::string id = {}) {
    SaveRequest r;
    r.kind = std::move(kind);
    r.ent = std::move(ent);
    r.id = std::move(id);
    Result<std::string> saved = store_->Save(r);
    EXPECT_TRUE(saved.ok()) << saved.status().ToString();
    return saved.ok() ? saved.value() : std::string();
  }

  TempDir dir_;
  ManualClock clock_;
  StoreOptions options_;
  std::unique_ptr<EntityStore> store_;
};

inline rapidjson::Document Json(std::string_view text) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

inline std::string IdOf(std::string_view text) {
  rapidjson::Document d = Json(text);
  return d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString() : "";
}

inline uint64_t VersionOf(std::string_view text) {
  rapidjson::Document d = Json(text);
  return d.IsObject() && d.HasMember("version") && d["version"].IsUint64()
             ? d["version"].GetUint64()
             : 0;
}

inline int64_t IntField(std::string_view text, const char* field) {
  rapidjson::Document d = Json(text);
  return d.IsObject() && d.HasMember(field) && d[field].IsInt64() ? d[field].GetInt64() : -1;
}

}  // namespace shardkit::store::testing

namespace shardkit::store::testing {

// The conformance suite: every TYPED_TEST of store_conformance runs against every backend of
// StoreBackends. Its tests are spread over the conformance_*_test.cc files by topic.
template <typename B>
class store_conformance : public StoreFixture<B> {};
// The cases about what survives a reopen, on the backends that keep data (PersistentBackends).
template <typename B>
class store_conformance_reopen : public store_conformance<B> {};

}  // namespace shardkit::store::testing
