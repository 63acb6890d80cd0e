// The byte form of change records (store/src/change_codec.h): what RocksDB's "changes" column
// family holds. A record that EncodeChange cannot have written must be refused, never read past.
#include "change_codec.h"

#include <gtest/gtest.h>

#include "key_codec.h"

namespace shardkit::store::internal {
namespace {

ChangeRecord Record(ChangeOp op) {
  ChangeRecord c;
  c.sequence = 9;
  c.op = op;
  c.ksid = 0x8000000000000001;
  c.version = 3;
  c.expires_at_ms = 1700000000000;
  c.kind = "entry";
  c.id = "a1";
  c.value = op == ChangeOp::kSave ? R"({"id":"a1","version":3})" : "";
  return c;
}

TEST(store_change_codec, EveryOpRoundTrips) {
  for (ChangeOp op : {ChangeOp::kSave, ChangeOp::kRemove, ChangeOp::kExpire, ChangeOp::kMoved}) {
    for (bool replicated : {false, true}) {
      ChangeRecord c = Record(op);
      c.replicated = replicated;
      const std::string bytes = EncodeChange(c);
      std::optional<ChangeRecord> back = DecodeChange(9, bytes);
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(back->op, op);
      EXPECT_EQ(back->replicated, replicated);
      EXPECT_EQ(back->ksid, c.ksid);
      EXPECT_EQ(back->version, c.version);
      EXPECT_EQ(back->expires_at_ms, c.expires_at_ms);
      EXPECT_EQ(back->kind, c.kind);
      EXPECT_EQ(back->id, c.id);
      EXPECT_EQ(back->value, c.value);
      EXPECT_EQ(EncodeChange(*back), bytes);
    }
  }
}

TEST(store_change_codec, ShortRecordsAndLengthsPastTheEndAreRefused) {
  const std::string good = EncodeChange(Record(ChangeOp::kSave));
  for (size_t n = 0; n < 33 + 5 + 8; ++n)
    EXPECT_FALSE(DecodeChange(9, good.substr(0, n)).has_value()) << n << " bytes";
  std::string id_too_long = good;
  id_too_long.replace(33 + 5, 8, BigEndian64(1000));
  EXPECT_FALSE(DecodeChange(9, id_too_long).has_value());
}

// Found by fuzz/change_record_fuzz: a kind length near 2^64 wrapped the bounds check
// (kind_size + 8), and the decoder then stepped its view backwards, before the record.
TEST(store_change_codec, AKindLengthThatWrapsIsRefused) {
  for (uint64_t kind_size : {~uint64_t{0}, ~uint64_t{0} - 7, ~uint64_t{0} - 3}) {
    std::string bytes = EncodeChange(Record(ChangeOp::kSave));
    bytes.replace(25, 8, BigEndian64(kind_size));
    EXPECT_FALSE(DecodeChange(9, bytes).has_value()) << kind_size;
  }
}

// A corrupt op byte is a corrupt record, not a record with an op no reader knows.
TEST(store_change_codec, AnUnknownOpIsRefused) {
  for (uint8_t op : {0x00, 0x05, 0x7f, 0x80, 0x85, 0xff}) {
    std::string bytes = EncodeChange(Record(ChangeOp::kSave));
    bytes[0] = static_cast<char>(op);
    EXPECT_FALSE(DecodeChange(9, bytes).has_value()) << int{op};
  }
}

}  // namespace
}  // namespace shardkit::store::internal
