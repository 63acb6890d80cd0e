// The `shardkit` executable: the command line (shardkit/cli/main.h) plus `demo`. The microblog
// demo is an example with a node binary of its own (examples/microblog, `shardkit-microblog`):
// `shardkit demo` runs that binary when it sits next to this one or in the build tree, so no
// product code links the example. `shardkit demo --routing` is a walk through pattern routing.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "shardkit/cli/main.h"
#include "src/router_demo.h"

namespace {

// Where the microblog binary is: beside this one (installed together), or in the build tree.
std::string FindMicroblogBinary() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (const fs::path& candidate :
       {self.parent_path() / "shardkit-microblog",
        self.parent_path().parent_path() / "examples/microblog/shardkit-microblog"}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

// Replaces this process with `shardkit-microblog demo <args>`; returns only on failure.
int RunMicroblogDemo(const std::vector<std::string>& args) {
  std::string binary = FindMicroblogBinary();
  if (binary.empty()) {
    fmt::print(stderr,
               "shardkit demo: the microblog demo is the example binary shardkit-microblog, which "
               "is not next to this one nor in the build tree; build it with `cmake --build "
               "--preset release --target shardkit-microblog` or run scripts/demo\n");
    return 2;
  }
  std::vector<char*> argv = {binary.data(), const_cast<char*>("demo")};
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  execv(binary.c_str(), argv.data());
  fmt::print(stderr, "shardkit demo: cannot run {}: {}\n", binary, std::strerror(errno));
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, keep_running = false, routing_walkthrough = false;
  std::string dir;
  shardkit::cli::MainOptions options;
  options.add_commands = [&](CLI::App& app, int& exit_code) {
    auto* demo = app.add_subcommand("demo",
                                    "The microblog of *The Tao of Microservices*: one process per "
                                    "service, grown by adding processes and reloading routes, "
                                    "under load (runs shardkit-microblog, docs/microblog.md)");
    demo->add_flag("--quick", quick, "A few seconds per step (for CI)");
    demo->add_flag("--keep-running", keep_running,
                   "Leave the nodes up until ctrl-C and print commands to try");
    demo->add_option("--dir", dir,
                     "Directory for configs, data and logs (default: a new temp dir)");
    demo->add_flag("--routing", routing_walkthrough,
                   "Instead: a walk through pattern routing on an in-process bus");
    demo->callback([&] {
      if (routing_walkthrough) {
        exit_code = shardkit::cli::RunRouterDemo();
        return;
      }
      std::vector<std::string> args;
      if (quick) args.push_back("--quick");
      if (keep_running) args.push_back("--keep-running");
      if (!dir.empty()) args.insert(args.end(), {"--dir", dir});
      exit_code = RunMicroblogDemo(args);
    });
  };
  return shardkit::cli::Main(argc, argv, options);
}
