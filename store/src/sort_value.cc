#include "sort_value.h"

#include <cstring>

#include "key_codec.h"

namespace shardkit::store::internal {
namespace {

template <typename T>
int Cmp(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

double AsDouble(const SortValue& v) {
  return v.is_integer ? static_cast<double>(v.integer) : v.number;
}

}  // namespace

SortValue SortValue::From(const rapidjson::Value* v) {
  SortValue out;
  if (v == nullptr) return out;
  if (v->IsNull()) {
    out.rank = kNull;
  } else if (v->IsFalse()) {
    out.rank = kFalse;
  } else if (v->IsTrue()) {
    out.rank = kTrue;
  } else if (v->IsNumber()) {
    out.rank = kNumber;
    if (v->IsUint64()) {
      out.is_integer = true;
      out.integer = v->GetUint64();
    } else if (v->IsInt64()) {
      out.is_integer = true;
      out.integer = v->GetInt64();
    } else {
      out.number = v->GetDouble();
    }
  } else if (v->IsString()) {
    out.rank = kString;
    out.text.assign(v->GetString(), v->GetStringLength());
  } else {
    out.rank = kComposite;
  }
  return out;
}

void SortValue::Encode(std::string& out) const {
  out.push_back(static_cast<char>(rank));
  if (rank == kNumber) {
    out.push_back(is_integer ? 1 : 0);
    if (is_integer) {
      unsigned __int128 u = static_cast<unsigned __int128>(integer);
      AppendBigEndian64(out, static_cast<uint64_t>(u >> 64));
      AppendBigEndian64(out, static_cast<uint64_t>(u));
    } else {
      uint64_t bits;
      std::memcpy(&bits, &number, sizeof bits);
      AppendBigEndian64(out, bits);
    }
  } else if (rank == kString) {
    AppendBigEndian64(out, text.size());
    out.append(text);
  }
}

std::optional<SortValue> SortValue::Decode(std::string_view& in) {
  if (in.empty() || static_cast<uint8_t>(in[0]) > kComposite) return std::nullopt;
  SortValue v;
  v.rank = static_cast<Rank>(in[0]);
  in.remove_prefix(1);
  if (v.rank == kNumber) {
    if (in.empty() || static_cast<uint8_t>(in[0]) > 1) return std::nullopt;
    v.is_integer = in[0] == 1;
    in.remove_prefix(1);
    size_t need = v.is_integer ? 16 : 8;
    if (in.size() < need) return std::nullopt;
    if (v.is_integer) {
      unsigned __int128 u = (static_cast<unsigned __int128>(ReadBigEndian64(in)) << 64) |
                            ReadBigEndian64(in.substr(8));
      v.integer = static_cast<__int128>(u);
    } else {
      uint64_t bits = ReadBigEndian64(in);
      std::memcpy(&v.number, &bits, sizeof bits);
    }
    in.remove_prefix(need);
  } else if (v.rank == kString) {
    if (in.size() < 8) return std::nullopt;
    uint64_t size = ReadBigEndian64(in);
    in.remove_prefix(8);
    if (in.size() < size) return std::nullopt;
    v.text.assign(in.substr(0, size));
    in.remove_prefix(size);
  }
  return v;
}

int Compare(const SortValue& a, const SortValue& b) {
  if (a.rank != b.rank) return Cmp(a.rank, b.rank);
  if (a.rank == SortValue::kNumber) {
    if (a.is_integer && b.is_integer) return Cmp(a.integer, b.integer);
    return Cmp(AsDouble(a), AsDouble(b));
  }
  if (a.rank == SortValue::kString)
    return a.text.compare(b.text) < 0 ? -1 : (a.text == b.text ? 0 : 1);
  return 0;
}

}  // namespace shardkit::store::internal
