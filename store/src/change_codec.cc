#include "change_codec.h"

#include "backend.h"
#include "key_codec.h"

namespace shardkit::store::internal {

std::string EncodeChange(const ChangeRecord& c) {
  std::string out;
  out.reserve(41 + c.kind.size() + c.id.size() + c.value.size());
  AppendChangeHeader(c, out);
  out.append(c.value);
  return out;
}

void AppendChangeHeader(const ChangeRecord& c, std::string& out) {
  out.push_back(static_cast<char>(StoredOp(c)));
  AppendBigEndian64(out, c.ksid);
  AppendBigEndian64(out, c.version);
  AppendBigEndian64(out, static_cast<uint64_t>(c.expires_at_ms));
  AppendBigEndian64(out, c.kind.size());
  out.append(c.kind);
  AppendBigEndian64(out, c.id.size());
  out.append(c.id);
}

std::optional<ChangeRecord> DecodeChange(uint64_t sequence, std::string_view in) {
  ChangeRecord c;
  c.sequence = sequence;
  if (in.size() < 33) return std::nullopt;
  SetStoredOp(c, static_cast<uint8_t>(in[0]));
  if (c.op < ChangeOp::kSave || c.op > ChangeOp::kMoved) return std::nullopt;
  c.ksid = ReadBigEndian64(in.substr(1));
  c.version = ReadBigEndian64(in.substr(9));
  c.expires_at_ms = static_cast<int64_t>(ReadBigEndian64(in.substr(17)));
  uint64_t kind_size = ReadBigEndian64(in.substr(25));
  in.remove_prefix(33);
  // Compared without adding to the stored length, which may be anything (kind_size + 8 wraps).
  if (in.size() < 8 || kind_size > in.size() - 8) return std::nullopt;
  c.kind.assign(in.substr(0, kind_size));
  in.remove_prefix(kind_size);
  uint64_t id_size = ReadBigEndian64(in);
  in.remove_prefix(8);
  if (in.size() < id_size) return std::nullopt;
  c.id.assign(in.substr(0, id_size));
  c.value.assign(in.substr(id_size));
  return c;
}

}  // namespace shardkit::store::internal
