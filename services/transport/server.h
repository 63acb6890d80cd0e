// Internal: what the tcp and http listeners share (tcp_server.cc, http.cc): the acceptor, the live
// connections, the accept loop and the listen steps. Each transport brings its own Connection,
// constructed as Connection(tcp::socket, std::shared_ptr<Server<Connection>>, number) and
// started with Start(); it erases its number from `connections` when it dies.
#pragma once

#include "io.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "wire.h"

namespace shardkit::services {

template <typename Connection>
struct Server {
  Server(asio::io_context& io, ListenerConfig c, ListenerHooks h)
      : io(io), acceptor(asio::make_strand(io)), config(std::move(c)), hooks(std::move(h)) {}

  asio::io_context& io;
  asio::ip::tcp::acceptor acceptor;  // used on its own strand only
  const ListenerConfig config;
  const ListenerHooks hooks;
  std::atomic<bool> draining{false};
  std::atomic<bool> closing{false};

  mutable std::mutex mutex;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections;  // guarded by mutex
  uint64_t next_connection = 1;                                         // guarded by mutex

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

// Accepts connections until the acceptor closes; one accepted while draining is closed at once.
template <typename Connection>
void Accept(std::shared_ptr<Server<Connection>> shared) {
  Server<Connection>* s = shared.get();
  s->acceptor.async_accept(
      asio::make_strand(s->io), [shared = std::move(shared)](const boost::system::error_code& ec,
                                                             asio::ip::tcp::socket socket) mutable {
        if (ec == asio::error::operation_aborted || !shared->acceptor.is_open()) return;
        if (ec) {
          spdlog::warn("{}: accept failed: {}", shared->config.endpoint.ToString(), ec.message());
        } else if (shared->draining.load()) {
          boost::system::error_code ignored;
          socket.close(ignored);
        } else {
          std::shared_ptr<Connection> connection;
          {
            std::lock_guard<std::mutex> lock(shared->mutex);
            uint64_t number = shared->next_connection++;
            connection = std::make_shared<Connection>(std::move(socket), shared, number);
            shared->connections[number] = connection;
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
  asio::dispatch(acceptor.get_executor(), [shared] { Accept(shared); });
  return bound.ToString();
}

}  // namespace shardkit::services
