// NatsServer: a real `nats-server -js` child process for tests, on a free port of `host`
// (127.0.0.1 unless given) with its JetStream store in a temp dir; stopped (SIGKILL) when
// destroyed. Stop()/Start() restart it on the same port and store, to test reconnects.
//
//   NatsServer nats;                         // started; nats.ok() false if it could not start
//   SHARDKIT_REQUIRE_COMPONENT(nats.ok(), nats.problem(), "nats-server");
//   std::string url = nats.url();            // "nats://127.0.0.1:40123"
//
// max_payload is 8 MiB so the transport suite's 2 MiB message fits (the server default is 1 MiB).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "test_util.h"

namespace shardkit::services::testing {

// A port that was free on `host` a moment ago (bind to port 0, read it, close).
inline uint16_t FreePort(const std::string& host = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Whether something accepts TCP connections on host:port now.
inline bool Accepts(const std::string& host, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

class NatsServer {
 public:
  // `wrap`: a command prefix (e.g. "ip netns exec ns1") to run the server under.
  // `extra`: more server configuration (e.g. an `authorization { … }` block).
  explicit NatsServer(std::string host = "127.0.0.1", std::string wrap = {}, std::string extra = {})
      : host_(std::move(host)), wrap_(std::move(wrap)), extra_(std::move(extra)) {
    if (std::system("command -v nats-server >/dev/null 2>&1") != 0) {
      problem_ = "nats-server is not installed (scripts/bootstrap installs it)";
      return;
    }
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
      port_ = wrap_.empty() ? FreePort(host_) : static_cast<uint16_t>(20000 + getpid() % 20000);
      Start();
    }
  }
  ~NatsServer() { Stop(); }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  bool ok() const { return pid_ > 0; }
  const std::string& problem() const { return problem_; }
  std::string url() const { return fmt::format("nats://{}:{}", host_, port_); }
  uint16_t port() const { return port_; }

  // Starts the server (again) on the same port and store; true once it accepts connections.
  bool Start() {
    if (pid_ > 0) return true;
    std::string config =
        dir_.Write("nats.conf", fmt::format("listen: \"{}:{}\"\nmax_payload: 8388608\n"
                                            "jetstream {{\n  store_dir: \"{}\"\n}}\n{}\n",
                                            host_, port_, dir_.File("js"), extra_));
    std::string log = dir_.File("nats.log");
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      std::string command = fmt::format("exec {} nats-server -c {} > {} 2>&1", wrap_, config, log);
      execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 500; ++i) {
      if (Ready()) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    problem_ = "nats-server did not start: " + ReadLog();
    Kill();
    return false;
  }

  // SIGKILL, like a crash; the store stays for Start().
  void Stop() { Kill(); }

  std::string ReadLog() const {
    std::ifstream in(dir_.File("nats.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  bool Ready() const {
    if (wrap_.empty()) return Accepts(host_, port_);
    // Inside a namespace: the log says when it is ready.
    return ReadLog().find("Server is ready") != std::string::npos;
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    // The log of the next start must not carry the old "ready" line.
    std::remove(dir_.File("nats.log").c_str());
  }

  TempDir dir_;
  std::string host_;
  std::string wrap_;
  std::string extra_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string problem_;
};

}  // namespace shardkit::services::testing
