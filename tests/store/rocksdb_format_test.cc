// The RocksDB store's bytes on disk (docs/store.md, "On disk"), pinned against hand-written
// bytes rather than the store's own encoders: a store written by an earlier build must open and
// read in this one, and this one must write what an earlier build reads.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include <shardkit/message/clock.h>
#include <shardkit/store/entity_store.h>
#include <shardkit/store/keyspace.h>

#include "store_test_util.h"

namespace shardkit::store {
namespace {

std::string BigEndian(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

std::string EntityKeyBytes(const std::string& kind, const std::string& id) {
  return kind + std::string(1, '\0') + BigEndian(Ksid(id)) + id;
}

// The store's directory opened with RocksDB's own API and its four column families.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"changes", {}}, {"expiry", {}}, {"meta", {}}};
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open({}, path, families, &handles_, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(db);
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  }
  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* entities() { return handles_[0]; }
  rocksdb::ColumnFamilyHandle* changes() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* expiry() { return handles_[2]; }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

TEST(store_rocksdb_format, ASaveWritesTheRowTheChangeRecordAndTheExpiryEntry) {
  testing::TempDir dir;
  ManualClock clock;
  StoreOptions options;
  options.path = dir.path();
  options.clock = &clock;
  options.purge_interval_ms = 0;
  {
    auto store = OpenRocksDbStore(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    SaveRequest save{.kind = "entry", .id = "a1", .ent = R"({"n":1})", .ttl_seconds = 60};
    ASSERT_TRUE((*store)->Save(save).ok());
  }
  const std::string json = R"({"id":"a1","version":1,"n":1})";
  const uint64_t expires = static_cast<uint64_t>(clock.NowMs() + 60'000);
  const std::string key = EntityKeyBytes("entry", "a1");
  RawDb raw(dir.path());
  std::string row;
  ASSERT_TRUE(raw.db().Get({}, raw.entities(), key, &row).ok());
  EXPECT_EQ(row, BigEndian(1) + BigEndian(expires) + json);

  // The last change record: op, ksid, version, expiry, |kind| kind, |id| id, json.
  std::unique_ptr<rocksdb::Iterator> it(raw.db().NewIterator({}, raw.changes()));
  it->SeekToLast();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().size(), 8u);
  EXPECT_EQ(it->value().ToString(), std::string(1, '\x01') + BigEndian(Ksid("a1")) + BigEndian(1) +
                                        BigEndian(expires) + BigEndian(5) + "entry" + BigEndian(2) +
                                        "a1" + json);

  std::string none;
  EXPECT_TRUE(raw.db().Get({}, raw.expiry(), BigEndian(expires) + key, &none).ok());
  EXPECT_EQ(none, "");
}

TEST(store_rocksdb_format, ARowWrittenByHandIsLoadedAndSavedOver) {
  testing::TempDir dir;
  StoreOptions options;
  options.path = dir.path();
  options.purge_interval_ms = 0;
  ASSERT_TRUE(OpenRocksDbStore(options).ok());  // creates the column families
  const std::string json = R"({"id":"b2","version":7,"x":true})";
  {
    RawDb raw(dir.path());
    ASSERT_TRUE(raw.db()
                    .Put({}, raw.entities(), EntityKeyBytes("entry", "b2"),
                         BigEndian(7) + BigEndian(0) + json)
                    .ok());
  }
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto loaded = (*store)->LoadRecord("entry", "b2");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->value, json);
  EXPECT_EQ(loaded->version, 7u);
  EXPECT_EQ(loaded->expires_at_ms, 0);
  EXPECT_EQ(loaded->kind, "entry");
  EXPECT_EQ(loaded->id, "b2");
  EXPECT_EQ(loaded->ksid, Ksid("b2"));
  SaveRequest save{.kind = "entry", .id = "b2", .ent = R"({"x":false})", .expected_version = 7};
  auto saved = (*store)->Save(save);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(*saved, R"({"id":"b2","version":8,"x":false})");
}

}  // namespace
}  // namespace shardkit::store
