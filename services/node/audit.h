// Internal: the node's audit log of operations (access.h): one JSON line per operation a listener
// admitted or refused, with the token's name, appended to [node] audit_log, or to the log when
// that is empty.
//
// Thread-safety: Write is safe from any thread.
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "access.h"
#include "shardkit/message/status.h"

namespace shardkit::services {

class AuditLog {
 public:
  // Opens `path` for appending ("": the log); `unavailable` naming the path when it cannot.
  static Result<std::shared_ptr<AuditLog>> Open(const std::string& path, std::string node);
  ~AuditLog();
  void Write(const AuditRecord& record);

 private:
  AuditLog(std::FILE* file, std::string node) : file_(file), node_(std::move(node)) {}
  std::mutex mutex_;
  std::FILE* file_;  // null: the log; guarded by mutex_
  const std::string node_;
};

}  // namespace shardkit::services
