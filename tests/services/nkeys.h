// NATS identities made at test time, so no committed key or token can expire or leak: NKeys
// (Ed25519 keys in NATS's encoding) and the JWTs of operator mode (an operator signs accounts, an
// account signs its users), with the `.creds` file a user signs in with.
//
//   NKey op = MakeNKey(NKey::kOperator), account = MakeNKey(NKey::kAccount);
//   NKey user = MakeNKey(NKey::kUser);
//   std::string creds = CredsFile(UserJwt(account, user), user);
//
// Encoding: a key is unpadded base32 of prefix byte(s) + 32 key bytes + CRC-16/XMODEM
// (little-endian); a seed's two prefix bytes say "seed" and the key's type. A JWT is
// base64url(header).base64url(claims).base64url(Ed25519 signature of the first two parts).
#pragma once

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace shardkit::services::testing {

struct NKey {
  // NATS's prefix bytes: the first base32 letter of the public key (O, A, U).
  enum Type : unsigned char { kOperator = 14 << 3, kAccount = 0, kUser = 20 << 3 };
  std::string public_key;  // "O…", "A…", "U…"
  std::string seed;        // "SO…", "SA…", "SU…": what nkey_seed_file and .creds files hold
  std::string raw_seed;    // the 32-byte Ed25519 private key, to sign with
};

namespace nkeys_detail {

inline std::string Base32(const std::string& raw) {
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    buffer = (buffer << 8) | c;
    for (bits += 8; bits >= 5; bits -= 5) out += alphabet[(buffer >> (bits - 5)) & 31];
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

// The payload with its CRC-16/XMODEM appended (little-endian), in base32.
inline std::string WithCrc(std::string raw) {
  uint16_t crc = 0;
  for (unsigned char c : raw) {
    crc ^= static_cast<uint16_t>(c << 8);
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
  }
  raw += static_cast<char>(crc & 0xff);
  raw += static_cast<char>(crc >> 8);
  return Base32(raw);
}

inline std::string Base64Url(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

}  // namespace nkeys_detail

inline NKey MakeNKey(NKey::Type type) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
  unsigned char seed[32], pub[32];
  size_t n = 32;
  EVP_PKEY_get_raw_private_key(key.get(), seed, &n);
  n = 32;
  EVP_PKEY_get_raw_public_key(key.get(), pub, &n);
  constexpr unsigned char kSeed = 18 << 3;
  std::string public_raw(1, static_cast<char>(type));
  public_raw.append(reinterpret_cast<char*>(pub), 32);
  std::string seed_raw = {static_cast<char>(kSeed | (type >> 5)),
                          static_cast<char>((type & 31) << 3)};
  seed_raw.append(reinterpret_cast<char*>(seed), 32);
  return {nkeys_detail::WithCrc(public_raw), nkeys_detail::WithCrc(seed_raw),
          std::string(reinterpret_cast<char*>(seed), 32)};
}

// A JWT about `subject` with `nats` (the claims' "nats" object), signed by `issuer`. No expiry.
inline std::string SignJwt(const NKey& issuer, const std::string& subject, const std::string& name,
                           const std::string& nats) {
  // jti: the hash of the claims without it, as NATS's tools make it (only unique matters here).
  std::string body = fmt::format(R"("iat":{},"iss":"{}","name":"{}","sub":"{}","nats":{})",
                                 std::time(nullptr), issuer.public_key, name, subject, nats);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest);
  std::string claims = fmt::format(
      R"({{"jti":"{}",{}}})",
      nkeys_detail::Base32(std::string(reinterpret_cast<char*>(digest), sizeof digest)), body);
  std::string signed_part = nkeys_detail::Base64Url(R"({"typ":"JWT","alg":"ed25519-nkey"})") + "." +
                            nkeys_detail::Base64Url(claims);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                   reinterpret_cast<const unsigned char*>(issuer.raw_seed.data()),
                                   issuer.raw_seed.size()),
      EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  EVP_MD_CTX_free);
  unsigned char signature[64];
  size_t length = sizeof signature;
  if (!key || EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(context.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(signed_part.data()),
                     signed_part.size()) != 1) {
    throw std::runtime_error("nkeys.h: Ed25519 signing failed");
  }
  return signed_part + "." +
         nkeys_detail::Base64Url(std::string(reinterpret_cast<char*>(signature), length));
}

inline std::string OperatorJwt(const NKey& op) {
  return SignJwt(op, op.public_key, "test-operator", R"({"type":"operator","version":2})");
}

// An account without limits; with JetStream unless `jetstream` is false (the cluster keeps its
// registry in a KV bucket; the system account must not have it).
inline std::string AccountJwt(const NKey& op, const NKey& account, const std::string& name,
                              bool jetstream = true) {
  std::string limits = R"("subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,)"
                       R"("wildcards":true,"conn":-1,"leaf":-1)";
  if (jetstream) limits += R"(,"mem_storage":-1,"disk_storage":-1,"streams":-1,"consumer":-1)";
  return SignJwt(op, account.public_key, name,
                 fmt::format(R"({{"limits":{{{}}},"default_permissions":{{"pub":{{}},"sub":{{}}}},)"
                             R"("type":"account","version":2}})",
                             limits));
}

inline std::string UserJwt(const NKey& account, const NKey& user) {
  return SignJwt(account, user.public_key, "test-user",
                 R"({"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user",)"
                 R"("version":2})");
}

// A `.creds` file's text, as NATS's tools write it.
inline std::string CredsFile(const std::string& user_jwt, const NKey& user) {
  return fmt::format(
      "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n"
      "************************* IMPORTANT *************************\n"
      "NKEY Seed printed below can be used to sign and prove identity.\n"
      "NKEYs are sensitive and should be treated as secrets.\n\n"
      "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n"
      "*************************************************************\n",
      user_jwt, user.seed);
}

}  // namespace shardkit::services::testing
