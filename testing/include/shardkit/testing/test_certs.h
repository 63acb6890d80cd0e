// Test certificates made at test time with OpenSSL's C API (nothing committed that could expire):
// a CA, a server certificate for 127.0.0.1 and localhost, a client certificate, a server
// certificate that expired yesterday, and a second CA with its own server certificate (a "wrong
// CA" for the first, and a renewed certificate for reload tests). EC P-256 keys: quick to make.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace shardkit::testing {

struct TestCerts {
  std::string ca;  // PEM files in the directory given to MakeTestCerts
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string expired_cert, expired_key;
  std::string other_ca;
  std::string other_server_cert, other_server_key;  // signed by other_ca, for 127.0.0.1
};

namespace certs_detail {

using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Cert = std::unique_ptr<X509, decltype(&X509_free)>;

inline void Check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what);
}

inline Key NewKey() {
  Key key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

inline void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, valid from `from_s` to `to_s` seconds from now, signed by
// `issuer` (self-signed when null). A CA, or a leaf for 127.0.0.1 and localhost.
inline Cert NewCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                    long from_s, long to_s) {
  static long serial = 1;
  Cert cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  AddExtension(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (ca) {
    AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    AddExtension(cert.get(), signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  Check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
        "X509_sign");
  return cert;
}

inline std::string WriteCert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  Check(f != nullptr && PEM_write_X509(f, cert) == 1, "PEM_write_X509");
  std::fclose(f);
  return path;
}

inline std::string WriteKey(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  Check(f != nullptr && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_PrivateKey");
  std::fclose(f);
  return path;
}

}  // namespace certs_detail

inline TestCerts MakeTestCerts(const std::string& dir) {
  using namespace certs_detail;
  constexpr long kDay = 24 * 3600;
  TestCerts out;
  Key ca_key = NewKey();
  Cert ca = NewCert(ca_key.get(), "shardkit test CA", nullptr, nullptr, true, -kDay, kDay);
  out.ca = WriteCert(dir + "/ca.crt", ca.get());
  auto leaf = [&](const char* name, X509* issuer, EVP_PKEY* issuer_key, long from, long to,
                  std::string& cert_path, std::string& key_path) {
    Key key = NewKey();
    Cert cert = NewCert(key.get(), name, issuer, issuer_key, false, from, to);
    cert_path = WriteCert(dir + "/" + name + ".crt", cert.get());
    key_path = WriteKey(dir + "/" + name + ".key", key.get());
  };
  leaf("server", ca.get(), ca_key.get(), -kDay, kDay, out.server_cert, out.server_key);
  leaf("client", ca.get(), ca_key.get(), -kDay, kDay, out.client_cert, out.client_key);
  leaf("expired", ca.get(), ca_key.get(), -2 * kDay, -kDay, out.expired_cert, out.expired_key);
  Key other_key = NewKey();
  Cert other = NewCert(other_key.get(), "another CA", nullptr, nullptr, true, -kDay, kDay);
  out.other_ca = WriteCert(dir + "/other_ca.crt", other.get());
  leaf("other_server", other.get(), other_key.get(), -kDay, kDay, out.other_server_cert,
       out.other_server_key);
  return out;
}

}  // namespace shardkit::testing
