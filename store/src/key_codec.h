// Byte encodings shared by the ordered backends (RocksDB, memory): big-endian integers, so that
// byte order is numeric order, and the entity key  kind \0 ksid(8 bytes, big-endian) id.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <shardkit/message/inline_text.h>

namespace shardkit::store::internal {

inline void AppendBigEndian64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

inline void WriteBigEndian64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
}

inline uint64_t ReadBigEndian64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

inline std::string BigEndian64(uint64_t v) {
  std::string out;
  AppendBigEndian64(out, v);
  return out;
}

// kind \0 ksid(8, big-endian) id. Kinds never contain NUL, so the first NUL ends the kind.
inline std::string EntityKey(std::string_view kind, uint64_t ksid, std::string_view id) {
  std::string key;
  key.reserve(kind.size() + 9 + id.size());
  key.append(kind);
  key.push_back('\0');
  AppendBigEndian64(key, ksid);
  key.append(id);
  return key;
}

// EntityKey in a buffer on the stack when it fits (almost every key), for the point reads and
// writes that run once per message: they then allocate nothing for the key.
class EntityKeyBuffer : public InlineText {
 public:
  EntityKeyBuffer(std::string_view kind, uint64_t ksid, std::string_view id)
      : InlineText(kind.size() + 9 + id.size()) {
    char* out = data();
    std::memcpy(out, kind.data(), kind.size());
    out[kind.size()] = '\0';
    WriteBigEndian64(out + kind.size() + 1, ksid);
    std::memcpy(out + kind.size() + 9, id.data(), id.size());
  }
};

// The first key of `kind` at `ksid` (kind \0 ksid).
inline std::string KindKsidPrefix(std::string_view kind, uint64_t ksid) {
  return EntityKey(kind, ksid, {});
}

// The first key after every key of `kind` (kind \1).
inline std::string KindEnd(std::string_view kind) {
  std::string key(kind);
  key.push_back('\1');
  return key;
}

struct DecodedKey {
  std::string_view kind;
  uint64_t ksid;
  std::string_view id;
};

inline std::optional<DecodedKey> DecodeEntityKey(std::string_view key) {
  size_t nul = key.find('\0');
  if (nul == std::string_view::npos || key.size() < nul + 9) return std::nullopt;
  return DecodedKey{key.substr(0, nul), ReadBigEndian64(key.substr(nul + 1, 8)),
                    key.substr(nul + 9)};
}

}  // namespace shardkit::store::internal
