// A TCP proxy on 127.0.0.1 between two processes, to break the link between them on demand: Cut()
// resets every connection and refuses new ones, Hold() stops every byte in both directions while
// the connections stay open (a partition), Heal() lets traffic through again. The migration tests
// put it between a coordinator and a remote target (the target's URL in `nodes` is the proxy's).
#pragma once

#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace shardkit::migrate::testing {

class LinkProxy {
 public:
  explicit LinkProxy(uint16_t target_port) : target_port_(target_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = Loopback(0);
    socklen_t length = sizeof(address);
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listener_, 64) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("link proxy: cannot listen on 127.0.0.1");
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~LinkProxy() {
    stop_ = true;
    acceptor_.join();
    for (auto& pump : pumps_) pump.join();
    close(listener_);
  }
  std::string url() const { return fmt::format("tcp://127.0.0.1:{}", port_); }

  void Cut() {
    state_ = kCut;
    ++generation_;
  }
  void Hold() { state_ = kHeld; }
  void Heal() { state_ = kOpen; }
  // Connections reset by Cut(), and connections refused while cut.
  int cut() const { return cut_; }
  int accepted() const { return accepted_; }

 private:
  enum State { kOpen, kHeld, kCut };

  static sockaddr_in Loopback(uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    return address;
  }
  // Closes with a reset (no FIN), as a broken link looks to the peer.
  static void Reset(int fd) {
    linger hard{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    close(fd);
  }

  void Accept() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int client = accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      if (state_ == kCut) {
        ++cut_;
        Reset(client);
        continue;
      }
      int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in target = Loopback(target_port_);
      if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&target), sizeof(target))) {
        Reset(client);
        if (server >= 0) close(server);
        continue;
      }
      ++accepted_;
      pumps_.emplace_back([this, client, server, generation = generation_.load()] {
        Pump(client, server, generation);
      });
    }
  }

  // Copies bytes both ways until either side closes, the proxy stops or a Cut() of a later
  // generation; while held, reads nothing (the peers' kernels buffer, then their writes block).
  void Pump(int a, int b, int generation) {
    char buffer[64 * 1024];
    bool open = true;
    while (open && !stop_) {
      if (generation_ != generation) break;
      if (state_ == kHeld) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = read(p[i].fd, buffer, sizeof(buffer));
        if (n <= 0) {
          open = false;
          break;
        }
        for (ssize_t sent = 0; sent < n && open;) {
          ssize_t w = write(p[1 - i].fd, buffer + sent, n - sent);
          if (w <= 0) open = false;
          sent += w;
        }
      }
    }
    if (open && generation_ != generation) ++cut_;
    Reset(a);
    Reset(b);
  }

  const uint16_t target_port_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<State> state_{kOpen};
  std::atomic<int> generation_{0}, cut_{0}, accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // only the acceptor adds; joined after it
};

}  // namespace shardkit::migrate::testing
