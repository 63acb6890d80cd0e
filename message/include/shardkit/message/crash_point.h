// Crash points for the process-level tests: when the environment variable SHARDKIT_CRASH_POINT
// equals `name` ("migrate:copied", "gate:closed", …; docs/migration.md lists them), the process
// kills itself with SIGKILL here, the same as kill -9 at that instant. Otherwise a no-op.
#pragma once

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shardkit {

inline void CrashPoint(const char* name) {
  static const char* const wanted = std::getenv("SHARDKIT_CRASH_POINT");
  if (wanted == nullptr || std::strcmp(wanted, name) != 0) return;
  std::fprintf(stderr, "crash point %s reached (SHARDKIT_CRASH_POINT): kill -9 now\n", name);
  std::fflush(nullptr);
  ::raise(SIGKILL);
}

}  // namespace shardkit
