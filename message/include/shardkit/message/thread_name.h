// NameThisThread: the name `top -H`, gdb and /proc/<pid>/task/<tid>/comm show for the calling
// thread, so an idle node's threads can be told apart (docs/architecture.md, "Threads and timers").
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace shardkit {

// Linux keeps 15 characters of a thread's name; a longer one is cut.
inline void NameThisThread(std::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace shardkit
