// `shardkit demo`: the microblog case study of *The Tao of Microservices*, end to end, with every
// service in its own `shardkit serve` process on 127.0.0.1, changed only by adding processes and
// reloading routes while a load generator sends requests through the front's HTTP listener
// (docs/microblog.md).
//
// Prints each iteration as it happens, then a summary table and one machine-readable line:
//   demo-result: errors=0 requests=N cache_hit_ratio=0.87 split=completed pause_ms=4.2 restarts=0
// Returns 0 when there were no errors, the cache hit ratio is above zero and the split completed.
//
// The node processes die with the demo: they are stopped (SIGTERM, then SIGKILL) on every exit
// path, on SIGINT/SIGTERM, and by the kernel if the demo itself is killed (PR_SET_PDEATHSIG).
#pragma once

#include <string>

namespace microblog {

struct DemoOptions {
  bool quick = false;         // a few seconds per step, fewer users and entries (CI)
  bool keep_running = false;  // leave the nodes up until ctrl-C, with commands to try printed
  std::string dir;            // working directory (configs, data, logs); empty: a temp dir
  std::string binary;         // the shardkit executable to run nodes with; empty: this process's
};

int RunDemo(const DemoOptions& options);

}  // namespace microblog
