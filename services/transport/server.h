// Internal: what the tcp and http listeners share (tcp_server.cc, http.cc): the acceptor, the live
// connections, the accept loop, the listen steps and the Listener itself. Each transport brings its
// own Connection, constructed as Connection(tcp::socket, std::shared_ptr<Server<Connection>>,
// number) and started with Start(); it calls Forget(number) when it dies.
//
// Limits at accept (listener_limits.h): past max_connections, or max_connections_per_peer for the
// peer, a new connection is closed at once and counted. Out of descriptors (EMFILE, ENFILE), the
// loop sheds one pending connection with the reserved descriptor, logs at most every 10 s and waits
// (100 ms, doubling to 1 s) before accepting again, instead of spinning.
#pragma once

#include "io.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "listener_limits.h"
#include "tls.h"
#include "wire.h"

namespace shardkit::services {

template <typename Connection>
struct Server {
  Server(IoRuntime::Impl& runtime, ListenerConfig c, ListenerHooks h)
      : runtime(runtime),
        io(runtime.io),
        acceptor(asio::make_strand(io)),
        retry(acceptor.get_executor()),
        config(std::move(c)),
        hooks(std::move(h)),
        counters(hooks.counters ? hooks.counters : std::make_shared<ListenerCounters>()) {}

  IoRuntime::Impl& runtime;
  asio::io_context& io;
  asio::ip::tcp::acceptor acceptor;  // used on its own strand only
  asio::steady_timer retry;          // the accept loop's pause after an error; acceptor's strand
  int64_t retry_ms = 0;              // its current length (0: no error since the last accept)
  const ListenerConfig config;
  const ListenerHooks hooks;
  const std::shared_ptr<ListenerCounters> counters;
  std::shared_ptr<ServerTls> tls;  // tls:// and https:// only; set before Listen
  std::string url;                 // the URL with the bound port; set by Listen
  ReservedDescriptor reserve;
  RateLimitedLog accept_log{10'000};
  std::atomic<bool> draining{false};
  std::atomic<bool> closing{false};

  mutable std::mutex mutex;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections;  // guarded by mutex
  uint64_t next_connection = 1;                                         // guarded by mutex
  std::unordered_map<uint64_t, std::string> peer_of;                    // guarded by mutex
  std::unordered_map<std::string, int64_t> per_peer;                    // guarded by mutex

  // Registers a new connection from `peer`; nullopt (counted) when a limit refuses it.
  std::optional<uint64_t> Admit(const std::string& peer) {
    std::lock_guard<std::mutex> lock(mutex);
    if (static_cast<int64_t>(connections.size()) >= config.max_connections) {
      counters->Refused(Refusal::kMaxConnections);
      return std::nullopt;
    }
    int64_t& open = per_peer[peer];
    if (open >= config.max_connections_per_peer) {
      counters->Refused(Refusal::kMaxPerPeer);
      return std::nullopt;
    }
    ++open;
    uint64_t number = next_connection++;
    peer_of[number] = peer;
    connections[number];  // counted at once; the connection is set by the caller
    return number;
  }
  void Forget(uint64_t number) {
    std::lock_guard<std::mutex> lock(mutex);
    connections.erase(number);
    auto it = peer_of.find(number);
    if (it == peer_of.end()) return;
    auto open = per_peer.find(it->second);
    if (open != per_peer.end() && --open->second <= 0) per_peer.erase(open);
    peer_of.erase(it);
  }

  std::vector<std::shared_ptr<Connection>> Snapshot() const {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& [number, weak] : connections) {
      if (auto connection = weak.lock()) out.push_back(std::move(connection));
    }
    return out;
  }
  size_t connection_count() const {
    std::lock_guard<std::mutex> lock(mutex);
    return connections.size();
  }
};

// A connection's wake-up for its time limits, set for the earliest time asked: asking for a later
// time while an earlier one is set changes nothing, so a request moving its limit on costs no timer
// operation. When it fires, `fire` runs on the timer's executor; the caller arms it again for what
// is still to come. `fire` holds the connection alive (it captures the connection's shared_ptr).
class EarliestTimer {
 public:
  template <typename Executor>
  explicit EarliestTimer(const Executor& executor) : timer_(executor) {}

  template <typename Fire>
  void ArmAt(int64_t due_ms, Fire fire) {
    if (due_ms == 0 || (due_ms_ != 0 && due_ms_ <= due_ms)) return;
    due_ms_ = due_ms;
    // +1: a limit is passed only strictly after it. Setting the time cancels an earlier wait.
    timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, due_ms - NowMs()) + 1));
    timer_.async_wait([this, fire = std::move(fire)](const boost::system::error_code& ec) mutable {
      if (ec) return;
      due_ms_ = 0;
      fire();
    });
  }
  void Cancel() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
  int64_t due_ms_ = 0;  // when timer_ is set for (0: not set)
};

// An accepted connection's socket made ready for requests and replies (no Nagle delay: replies
// are small and answered at once); returns the peer's address, for limits and the audit log.
inline std::string ReadyAccepted(asio::ip::tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  return socket.remote_endpoint(ignored).address().to_string();
}

// Marks the server draining and closes its acceptor; false if it was draining already.
template <typename Connection>
bool StopAccepting(const std::shared_ptr<Server<Connection>>& shared) {
  if (shared->draining.exchange(true)) return false;
  asio::dispatch(shared->acceptor.get_executor(), [shared] {
    boost::system::error_code ignored;
    shared->acceptor.close(ignored);
  });
  return true;
}

template <typename Connection>
void Accept(std::shared_ptr<Server<Connection>> shared);

// Out of descriptors, or another accept error: shed one waiting client, log (rate-limited) and
// accept again after a pause, so the loop does not spin.
template <typename Connection>
void AcceptFailed(std::shared_ptr<Server<Connection>> shared, const boost::system::error_code& ec) {
  bool out_of_fds = ec == asio::error::no_descriptors || ec.value() == ENFILE ||
                    ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
  if (out_of_fds && shared->reserve.Shed(shared->acceptor.native_handle()))
    shared->counters->Refused(Refusal::kNoDescriptors);
  shared->accept_log.Warn(shared->config.endpoint.ToString(),
                          fmt::format("accept failed: {}", ec.message()));
  shared->retry_ms = std::clamp<int64_t>(shared->retry_ms * 2, 100, 1000);
  shared->retry.expires_after(std::chrono::milliseconds(shared->retry_ms));
  shared->retry.async_wait([shared](const boost::system::error_code& wait_ec) mutable {
    if (!wait_ec) Accept(std::move(shared));
  });
}

// Accepts connections until the acceptor closes; one accepted while draining, or past a limit,
// is closed at once.
template <typename Connection>
void Accept(std::shared_ptr<Server<Connection>> shared) {
  Server<Connection>* s = shared.get();
  if (!s->acceptor.is_open()) return;
  s->acceptor.async_accept(
      asio::make_strand(s->runtime.ForConnection()),
      [shared = std::move(shared)](const boost::system::error_code& ec,
                                   asio::ip::tcp::socket socket) mutable {
        if (ec == asio::error::operation_aborted || !shared->acceptor.is_open()) return;
        if (ec) return AcceptFailed(std::move(shared), ec);
        shared->retry_ms = 0;
        boost::system::error_code ignored;
        std::optional<uint64_t> number;
        if (!shared->draining.load()) {
          number = shared->Admit(PeerOf(socket.remote_endpoint(ignored).address().to_string()));
        }
        if (!number) {
          socket.close(ignored);
        } else {
          auto connection = std::make_shared<Connection>(std::move(socket), shared, *number);
          {
            std::lock_guard<std::mutex> lock(shared->mutex);
            shared->connections[*number] = connection;
          }
          connection->Start();
        }
        Accept(std::move(shared));
      });
}

// Opens, binds and listens on the server's endpoint, then starts accepting. Returns the URL it
// listens on (port 0 resolved to the port bound).
template <typename Connection>
Result<std::string> Listen(const std::shared_ptr<Server<Connection>>& shared) {
  const Endpoint& endpoint = shared->config.endpoint;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(endpoint.host, ec);
  if (ec)
    return Status::Invalid(fmt::format("{}: the host must be an IP address", endpoint.ToString()));
  asio::ip::tcp::endpoint where(address, endpoint.port);
  auto fail = [&](std::string_view step) {
    return Status::Unavailable(
        fmt::format("cannot listen on {}: {}: {}", endpoint.ToString(), step, ec.message()));
  };
  auto& acceptor = shared->acceptor;
  if (acceptor.open(where.protocol(), ec); ec) return fail("open");
  if (acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec); ec)
    return fail("reuse_address");
  if (acceptor.bind(where, ec); ec) return fail("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
  Endpoint bound = endpoint;
  bound.port = acceptor.local_endpoint(ec).port();
  shared->url = bound.ToString();
  asio::dispatch(acceptor.get_executor(), [shared] { Accept(shared); });
  return bound.ToString();
}

// Loads the listener's certificate and key (tls:// and https://), then listens (Listen).
template <typename Connection>
Result<std::string> LoadTlsAndListen(const std::shared_ptr<Server<Connection>>& shared) {
  if (shared->config.endpoint.tls) {
    auto tls = ServerTls::Load(shared->config);
    if (!tls.ok()) return tls.status();
    shared->tls = std::move(tls).value();
  }
  return Listen(shared);
}

// The Listener over a Server, the same for every transport. StopAccepting closes the acceptor
// and calls each connection's Drain(); Close, the first time, each connection's
// CloseAfterFlush(): a transport's Connection says what those mean for it.
template <typename Connection>
class ServerListener final : public Listener {
 public:
  ServerListener(std::shared_ptr<Server<Connection>> shared, std::string url)
      : shared_(std::move(shared)), url_(std::move(url)) {}
  ~ServerListener() override {
    StopAccepting();
    Close();
  }

  std::string url() const override { return url_; }

  void StopAccepting() override {
    if (!services::StopAccepting(shared_)) return;
    for (auto& connection : shared_->Snapshot()) connection->Drain();
  }

  void Close() override {
    if (shared_->closing.exchange(true)) return;
    for (auto& connection : shared_->Snapshot()) connection->CloseAfterFlush();
  }

  size_t connections() const override { return shared_->connection_count(); }

  Status ReloadCertificates() override {
    return shared_->tls ? shared_->tls->Reload() : Status::Ok();
  }

 private:
  std::shared_ptr<Server<Connection>> shared_;
  std::string url_;
};

// Starts a listener whose connections are `Connection`s: certificates, bind, listen, accept.
template <typename Connection>
Result<std::unique_ptr<Listener>> StartServer(IoRuntime::Impl& runtime,
                                              const ListenerConfig& config, ListenerHooks hooks) {
  auto shared = std::make_shared<Server<Connection>>(runtime, config, std::move(hooks));
  auto url = LoadTlsAndListen(shared);
  if (!url.ok()) return url.status();
  return std::unique_ptr<Listener>(std::make_unique<ServerListener<Connection>>(shared, *url));
}

}  // namespace shardkit::services
