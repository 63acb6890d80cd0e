#include <shardkit/store/keyspace.h>

#include <gtest/gtest.h>
#include <xxhash.h>

namespace shardkit::store {
namespace {

TEST(store_keyspace, KsidIsXxh64WithSeedZero) {
  EXPECT_EQ(Ksid(""), 0xEF46DB3751D8E999ull);  // the published XXH64("", 0)
  EXPECT_EQ(Ksid("alice"), XXH64("alice", 5, 0));
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(Ksid(with_nul), XXH64(with_nul.data(), 3, 0));
  EXPECT_NE(Ksid(with_nul), Ksid("a"));
}

TEST(store_keyspace, KsidRangeIsHalfOpenAndZeroEndMeansUnbounded) {
  const KsidRange shard{0x4000000000000000, 0x8000000000000000};
  EXPECT_TRUE(shard.Contains(0x4000000000000000));
  EXPECT_TRUE(shard.Contains(0x7fffffffffffffff));
  EXPECT_FALSE(shard.Contains(0x8000000000000000));
  EXPECT_FALSE(shard.Contains(0x3fffffffffffffff));
  const KsidRange last{0xc000000000000000, 0};
  EXPECT_TRUE(last.Contains(UINT64_MAX));
  EXPECT_TRUE(KsidRange{}.Contains(0));
  EXPECT_TRUE(KsidRange{}.Contains(UINT64_MAX));
}

}  // namespace
}  // namespace shardkit::store
