#include "processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <shardkit/message/codec.h>
#include <shardkit/services/client.h>
#include <shardkit/services/endpoint.h>

namespace microblog {
namespace {

using shardkit::Message;
using shardkit::Result;
using shardkit::Status;

// Children known to the signal handler (async-signal-safe reads only).
constexpr size_t kMaxChildren = 32;
std::array<std::atomic<pid_t>, kMaxChildren> g_children{};
std::atomic<bool> g_interrupted{false};

void Remember(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void Forget(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

extern "C" void OnInterrupt(int) {
  g_interrupted.store(true);
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0) kill(pid, SIGTERM);
  }
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string LastLines(const std::string& path, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += "      " + lines[i] + "\n";
  return out;
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return Status::Internal(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Internal(fmt::format("cannot write {}: {}", path, ec.message()));
  return Status::Ok();
}

}  // namespace

void InstallInterruptHandler() {
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool Interrupted() { return g_interrupted.load(); }

bool SleepUnlessInterrupted(std::chrono::milliseconds duration) {
  auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) {
    if (Interrupted()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(20), until - std::chrono::steady_clock::now()));
  }
  return !Interrupted();
}

NodeProcesses::NodeProcesses(std::string binary, std::string dir)
    : binary_(std::move(binary)), dir_(std::move(dir)), runtime_(1) {}

NodeProcesses::~NodeProcesses() { StopAll(); }

Result<const NodeProcess*> NodeProcesses::Start(const std::string& name, const std::string& toml,
                                                int iteration) {
  auto node = std::make_unique<NodeProcess>();
  node->name = name;
  node->started_in = iteration;
  node->config_path = fmt::format("{}/{}.toml", dir_, name);
  node->log_path = fmt::format("{}/{}.log", dir_, name);
  std::string ready = fmt::format("{}/{}.ready", dir_, name);
  std::remove(ready.c_str());
  if (Status s = WriteFile(node->config_path, toml); !s.ok()) return s;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::Internal(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // The child: die with the demo, whatever kills it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int log = open(node->log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execl(binary_.c_str(), "shardkit", "serve", "--config", node->config_path.c_str(),
          "--ready-file", ready.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  node->pid = pid;
  Remember(pid);
  NodeProcess* raw = node.get();
  nodes_.push_back(std::move(node));
  for (int i = 0; i < 1500 && !Interrupted(); ++i) {
    if (std::filesystem::exists(ready)) {
      std::istringstream lines(ReadAll(ready));
      for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        raw->urls.push_back(line);
        if (raw->tcp.empty() && line.rfind("tcp://", 0) == 0) raw->tcp = line;
        if (raw->http.empty() && line.rfind("http://", 0) == 0) raw->http = line;
      }
      return raw;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      Forget(pid);
      raw->pid = -1;
      return Status::Unavailable(fmt::format("node {} exited at start; its log {}:\n{}", name,
                                             raw->log_path, LastLines(raw->log_path, 10)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Unavailable(
      fmt::format("node {} did not start listening (log {})", name, raw->log_path));
}

Status NodeProcesses::Reload(const std::string& name, const std::string& toml) {
  const NodeProcess* node = Find(name);
  if (node == nullptr) return Status::NotFound(fmt::format("no node {}", name));
  if (Status s = WriteFile(node->config_path, toml); !s.ok()) return s;
  Message reload;
  reload.SetString("sys", "config").SetString("cmd", "reload");
  auto reply = Call(name, std::move(reload));
  if (!reply.ok())
    return Status(reply.status().code(),
                  fmt::format("reload of {} refused: {}", name, reply.status().message()));
  return Status::Ok();
}

Result<Message> NodeProcesses::Call(const std::string& name, Message message,
                                    std::chrono::milliseconds timeout) {
  std::shared_ptr<shardkit::Handler> client;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(name);
    if (it != clients_.end()) {
      client = it->second;
    } else {
      const NodeProcess* node = Find(name);
      if (node == nullptr || node->tcp.empty())
        return Status::NotFound(fmt::format("no node {} with a tcp listener", name));
      auto endpoint = shardkit::services::ParseEndpoint(node->tcp);
      if (!endpoint.ok()) return endpoint.status();
      shardkit::services::ClientOptions options;
      options.timeout = std::chrono::minutes(2);  // the message's deadline is the real bound
      options.connections = 1;
      options.max_message_bytes = 64 << 20;
      auto made = shardkit::services::MakeClient(runtime_, *endpoint, options);
      if (!made.ok()) return made.status();
      client = clients_[name] = *made;
    }
  }
  message.meta().deadline = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch() + timeout)
                                .count();
  return shardkit::services::CallAndWait(*client, std::move(message));
}

const NodeProcess* NodeProcesses::Find(const std::string& name) const {
  for (const auto& node : nodes_) {
    if (node->name == name) return node.get();
  }
  return nullptr;
}

std::vector<const NodeProcess*> NodeProcesses::All() const {
  std::vector<const NodeProcess*> all;
  for (const auto& node : nodes_) all.push_back(node.get());
  return all;
}

std::vector<std::string> NodeProcesses::Exited() {
  std::vector<std::string> exited;
  for (auto& node : nodes_) {
    int status = 0;
    if (node->pid <= 0) {
      exited.push_back(node->name);
    } else if (waitpid(node->pid, &status, WNOHANG) == node->pid) {
      Forget(node->pid);
      node->pid = -1;
      exited.push_back(node->name);
    }
  }
  return exited;
}

void NodeProcesses::StopAll(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    clients_.clear();
  }
  for (auto& node : nodes_) {
    if (node->pid > 0) kill(node->pid, SIGTERM);
  }
  auto until = std::chrono::steady_clock::now() + grace;
  for (auto& node : nodes_) {
    while (node->pid > 0) {
      int status = 0;
      pid_t done = waitpid(node->pid, &status, WNOHANG);
      if (done == node->pid || (done < 0 && errno == ECHILD)) {
        Forget(node->pid);
        node->pid = -1;
      } else if (std::chrono::steady_clock::now() >= until) {
        kill(node->pid, SIGKILL);
        waitpid(node->pid, &status, 0);
        Forget(node->pid);
        node->pid = -1;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
}

}  // namespace microblog
