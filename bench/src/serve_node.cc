#include "serve_node.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace shardkit::bench {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

ServeNode::ServeNode(const std::string& dir, const std::string& config)
    : config_path_(dir + "/node.toml"), ready_(dir + "/ready") {
  std::filesystem::create_directories(dir);
  std::ofstream(config_path_) << config;
  const std::string log = dir + "/serve.log";
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) throw std::runtime_error("bench: cannot find this executable");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("bench: fork failed");
  if (pid_ == 0) {
    FILE* out = std::fopen(log.c_str(), "w");
    if (out != nullptr) {
      dup2(fileno(out), 1);
      dup2(fileno(out), 2);
    }
    execl(self.c_str(), "shardkit", "serve", "--config", config_path_.c_str(), "--ready-file",
          ready_.c_str(), nullptr);
    _exit(127);
  }
  // The node writes its bound URL (port 0 picked by the kernel) once it serves.
  for (int i = 0; i < 3000 && url_.empty(); ++i) {
    std::string text = ReadAll(ready_);
    if (!text.empty() && text.back() == '\n') url_ = text.substr(0, text.find('\n'));
    int status = 0;
    if (url_.empty() && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("bench: shardkit serve exited: " + ReadAll(log));
    }
    if (url_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (url_.empty()) throw std::runtime_error("bench: shardkit serve not ready in 30 s");
}

ServeNode::~ServeNode() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

std::shared_ptr<Handler> ClientOf(services::IoRuntime& runtime, const std::string& url,
                                  int connections, std::chrono::milliseconds timeout) {
  auto endpoint = services::ParseEndpoint(url);
  if (!endpoint.ok()) throw std::runtime_error(endpoint.status().ToString());
  services::ClientOptions client_options;
  client_options.connections = connections;
  client_options.timeout = timeout;
  auto client = services::MakeClient(runtime, *endpoint, client_options);
  if (!client.ok()) throw std::runtime_error(client.status().ToString());
  return std::move(client).value();
}

std::string NodeConfigHead(const std::string& name) {
  return fmt::format("[node]\nname = \"{}\"\n[[listener]]\nurl = \"tcp://127.0.0.1:0\"\n", name);
}

std::string ServiceConfig(const std::string& name, const std::string& type,
                          const std::string& settings) {
  return fmt::format("[[service]]\nname = \"{}\"\ntype = \"{}\"\n{}{}", name, type, settings,
                     settings.empty() ? "" : "\n");
}

std::string RouteConfig(const std::string& pattern, const std::string& to,
                        const std::string& settings) {
  return fmt::format("[[route]]\npattern = '{}'\nto = \"{}\"\n{}{}", pattern, to, settings,
                     settings.empty() ? "" : "\n");
}

}  // namespace shardkit::bench
