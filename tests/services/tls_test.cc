// TLS on tcp:// and http:// listeners (tls://, https://): what is refused, and how clearly. Each
// refusal is checked with a real in-process node over real sockets, and a correctly configured
// client then finds that nothing was saved. The transport suite (transport_test.cc) runs the
// ordinary requests over TLS; certificates are made at test time (shardkit/testing/test_certs.h).
#include <filesystem>

#include <gmock/gmock.h>

#include <boost/asio/write.hpp>

#include "serve_process.h"
#include "shardkit/testing/test_certs.h"
#include "test_util.h"
#include "tls_stream.h"

namespace shardkit::services::testing {
namespace {

using ::shardkit::testing::MakeTestCerts;
using ::shardkit::testing::TestCerts;

using ::testing::HasSubstr;

const TestCerts& Certs() {
  static TempDir dir;  // removed at exit
  static TestCerts certs = MakeTestCerts(dir.path());
  return certs;
}

struct Files {
  std::string cert, key, client_ca;
};

class TlsTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool https() const { return GetParam() == "https"; }

  // A node with a kv store behind one tls:// or https:// listener.
  void StartWith(const Files& files) {
    std::string client_ca =
        files.client_ca.empty() ? "" : fmt::format("tls_client_ca_file = \"{}\"", files.client_ca);
    toml_ = fmt::format(R"(
[node]
name = "tls-node"
[[listener]]
url = "{}://127.0.0.1:0"
tls_cert_file = "{}"
tls_key_file = "{}"
{}
[[service]]
name = "entries"
type = "kv"
)",
                        GetParam(), files.cert, files.key, client_ca);
    node_ = StartNode(toml_);
    ASSERT_NE(node_, nullptr);
    url_ = node_->listener_urls().at(0);
  }
  void TearDown() override {
    if (node_) node_->Stop(std::chrono::milliseconds(500));
  }

  Result<Message> Save(ClientOptions options, const std::string& url, const std::string& id) {
    options.timeout = std::chrono::seconds(5);
    auto endpoint = ParseEndpoint(url);
    EXPECT_TRUE(endpoint.ok());
    auto client = MakeClient(runtime_, *endpoint, options);
    if (!client.ok()) return client.status();
    return CallAndWait(
        **client, Msg(fmt::format(
                      R"({{"store":"save","kind":"entry","id":"{0}","ent":{{"id":"{0}"}}}})", id)));
  }
  // Whether entry `id` is in the store, asked by a client that trusts the right CA.
  bool Saved(const std::string& id, ClientOptions options = {}) {
    if (options.tls_ca_file.empty()) options.tls_ca_file = Certs().ca;
    auto client = Client(runtime_, url_, options);
    auto loaded = CallAndWait(
        *client, Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
    EXPECT_TRUE(loaded.ok() || loaded.status().code() == Code::kNotFound)
        << loaded.status().ToString();
    return loaded.ok();
  }

  IoRuntime runtime_{2};
  std::string toml_;
  std::unique_ptr<Node> node_;
  std::string url_;
};

TEST_P(TlsTest, AServerCertificateFromAnotherCaIsRefusedAndNothingIsSaved) {
  StartWith({Certs().server_cert, Certs().server_key});
  auto saved = Save({.tls_ca_file = Certs().other_ca}, url_, "a");
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.status().code(), Code::kUnavailable);
  EXPECT_THAT(saved.status().message(),
              HasSubstr("TLS handshake with " + url_ +
                        " failed: the server's certificate was "
                        "refused: unable to get local issuer certificate"));
  EXPECT_FALSE(Saved("a"));
  EXPECT_TRUE(Save({.tls_ca_file = Certs().ca}, url_, "b").ok());
  EXPECT_TRUE(Saved("b"));
}

TEST_P(TlsTest, AnExpiredServerCertificateIsRefusedAndNothingIsSaved) {
  StartWith({Certs().expired_cert, Certs().expired_key});
  auto saved = Save({.tls_ca_file = Certs().ca}, url_, "a");
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.status().code(), Code::kUnavailable);
  EXPECT_THAT(saved.status().message(),
              HasSubstr("the server's certificate was refused: certificate has expired"));
}

TEST_P(TlsTest, APlainTextClientIsToldThePortSpeaksTlsAndNothingIsSaved) {
  StartWith({Certs().server_cert, Certs().server_key});
  std::string plain = url_;
  plain.replace(0, plain.find("://"), https() ? "http" : "tcp");
  auto saved = Save({}, plain, "a");
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.status().code(), Code::kInvalid) << saved.status().ToString();
  EXPECT_THAT(saved.status().message(),
              HasSubstr(url_ + " speaks TLS: connect with " + (https() ? "https://" : "tls://")));
  EXPECT_FALSE(Saved("a"));
}

TEST_P(TlsTest, MutualTlsRefusesAClientWithoutACertificateOrWithAnUntrustedOne) {
  StartWith({Certs().server_cert, Certs().server_key, Certs().ca});
  auto bare = Save({.tls_ca_file = Certs().ca}, url_, "a");
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.status().code(), Code::kUnavailable);
  EXPECT_THAT(bare.status().message(), HasSubstr("certificate required"))
      << bare.status().ToString();
  auto untrusted = Save({.tls_ca_file = Certs().ca,
                         .tls_cert_file = Certs().other_server_cert,
                         .tls_key_file = Certs().other_server_key},
                        url_, "b");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.status().code(), Code::kUnavailable) << untrusted.status().ToString();
  ClientOptions with_cert{.tls_ca_file = Certs().ca,
                          .tls_cert_file = Certs().client_cert,
                          .tls_key_file = Certs().client_key};
  EXPECT_FALSE(Saved("a", with_cert));
  EXPECT_FALSE(Saved("b", with_cert));
  auto good = Save(with_cert, url_, "c");
  EXPECT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(Saved("c", with_cert));
}

TEST_P(TlsTest, ReloadServesTheRenewedCertificateToNewConnections) {
  TempDir dir;
  std::string cert = dir.File("node.crt");
  std::string key = dir.File("node.key");
  std::filesystem::copy_file(Certs().server_cert, cert);
  std::filesystem::copy_file(Certs().server_key, key);
  StartWith({cert, key});
  auto old_client = Client(runtime_, url_, {.connections = 1, .tls_ca_file = Certs().ca});
  ASSERT_TRUE(CallAndWait(*old_client, Msg(R"({"store":"load","kind":"entry","id":"x"})"))
                  .status()
                  .code() == Code::kNotFound);

  auto overwrite = std::filesystem::copy_options::overwrite_existing;
  std::filesystem::copy_file(Certs().other_server_cert, cert, overwrite);
  std::filesystem::copy_file(Certs().other_server_key, key, overwrite);
  ASSERT_TRUE(node_->Reload(ParseNodeConfig(toml_, "test.toml").value()).ok());

  auto renewed = Save({.tls_ca_file = Certs().other_ca}, url_, "new");
  EXPECT_TRUE(renewed.ok()) << renewed.status().ToString();
  auto stale = Save({.tls_ca_file = Certs().ca}, url_, "stale");
  ASSERT_FALSE(stale.ok());
  EXPECT_THAT(stale.status().message(), HasSubstr("unable to get local issuer certificate"));
  // The connection opened before the reload keeps its session.
  auto kept = CallAndWait(*old_client, Msg(R"({"store":"load","kind":"entry","id":"new"})"));
  EXPECT_TRUE(kept.ok()) << kept.status().ToString();
}

TEST_P(TlsTest, UnreadableFilesAreClearErrors) {
  auto endpoint = ParseEndpoint(GetParam() + "://127.0.0.1:1");
  ASSERT_TRUE(endpoint.ok());
  auto client = MakeClient(runtime_, *endpoint, {.tls_ca_file = "/nonexistent/ca.crt"});
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(), HasSubstr("tls_ca_file '/nonexistent/ca.crt'"));

  auto config = ParseNodeConfig(fmt::format(R"(
[[listener]]
url = "{}://127.0.0.1:0"
tls_cert_file = "{}"
tls_key_file = "/nonexistent/node.key"
)",
                                            GetParam(), Certs().server_cert),
                                "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto node = Node::Start(std::move(config).value());
  ASSERT_FALSE(node.ok());
  EXPECT_THAT(node.status().message(), HasSubstr("tls_key_file '/nonexistent/node.key'"));
}

// `shardkit serve` with a tls:// listener, driven by the command line: --tls-ca trusts the test
// CA, a call without it is refused naming the certificate check, and `shardkit reload` puts a
// renewed certificate in service for the connections after it.
TEST(TlsServeTest, TheCliCallsOverTlsAndReloadRenewsTheCertificate) {
  TempDir dir;
  std::string cert = dir.File("node.crt");
  std::string key = dir.File("node.key");
  std::filesystem::copy_file(Certs().server_cert, cert);
  std::filesystem::copy_file(Certs().server_key, key);
  ServeProcess serve(dir, dir.Write("node.toml", fmt::format(R"(
[node]
name = "tls-serve"
[[listener]]
url = "tls://127.0.0.1:0"
tls_cert_file = "{}"
tls_key_file = "{}"
[[service]]
name = "echo"
type = "echo"
)",
                                                             cert, key)));
  auto urls = serve.WaitReady();
  ASSERT_EQ(urls.size(), 1u) << serve.log();
  const std::string& url = urls[0];
  auto act = [&](const std::string& ca) {
    return Shell(dir, Cli(fmt::format("act role:echo,x:3 --to {} --timeout-ms 3000{}", url,
                                      ca.empty() ? "" : " --tls-ca " + ca)));
  };
  ShellRun trusted = act(Certs().ca);
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_THAT(trusted.out, HasSubstr("\"x\":3"));
  ShellRun untrusted = act("");  // the system's CAs do not know the test CA
  EXPECT_EQ(untrusted.exit_code, 2) << untrusted.out;
  EXPECT_THAT(untrusted.err, HasSubstr("the server's certificate was refused"));

  auto overwrite = std::filesystem::copy_options::overwrite_existing;
  std::filesystem::copy_file(Certs().other_server_cert, cert, overwrite);
  std::filesystem::copy_file(Certs().other_server_key, key, overwrite);
  ShellRun reload = Shell(dir, Cli(fmt::format("reload --to {} --tls-ca {}", url, Certs().ca)));
  EXPECT_EQ(reload.exit_code, 0) << reload.err;
  ShellRun renewed = act(Certs().other_ca);
  EXPECT_EQ(renewed.exit_code, 0) << renewed.err;
  ShellRun stale = act(Certs().ca);
  EXPECT_EQ(stale.exit_code, 2) << stale.out;
  EXPECT_THAT(stale.err, HasSubstr("unable to get local issuer certificate"));
}

// What a TLS listener makes of a connection's first byte. A wake-up with nothing to read yet (the
// reactor can report readiness that an earlier socket with the same descriptor number had) is no
// plain-text client: taken for one, a TLS client was once refused mid-handshake (`bench net`:
// "handshake: wrong version number").
TEST(TlsFirstByteTest, NothingToReadYetIsNotPlainText) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto peek_after = [&](const std::string& sent, bool close) {
    tcp::socket client(io), server(io);
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
    server.non_blocking(true);
    if (!sent.empty()) asio::write(client, asio::buffer(sent));
    if (close) client.close();
    if (!sent.empty() || close) server.wait(tcp::socket::wait_read);
    return PeekFirstByte(server);
  };
  EXPECT_EQ(peek_after("", false), FirstByte::kNothingYet);
  EXPECT_EQ(peek_after("\x16\x03\x01", false), FirstByte::kTls);
  EXPECT_EQ(peek_after("GET / HTTP/1.1\r\n", false), FirstByte::kPlain);
  EXPECT_EQ(peek_after("", true), FirstByte::kClosed);
}

INSTANTIATE_TEST_SUITE_P(Schemes, TlsTest, ::testing::Values("tls", "https"),
                         [](const auto& info) { return info.param == "tls" ? "Tls" : "Https"; });

}  // namespace
}  // namespace shardkit::services::testing
