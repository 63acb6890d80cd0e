#include "audit.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "shardkit/message/json.h"
#include "wire.h"

namespace shardkit::services {

Result<std::shared_ptr<AuditLog>> AuditLog::Open(const std::string& path, std::string node) {
  std::FILE* file = nullptr;
  if (!path.empty()) {
    file = std::fopen(path.c_str(), "a");
    if (file == nullptr)
      return Status::Unavailable(
          fmt::format("audit_log: cannot open '{}': {}", path, std::strerror(errno)));
  }
  return std::shared_ptr<AuditLog>(new AuditLog(file, std::move(node)));
}

AuditLog::~AuditLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void AuditLog::Write(const AuditRecord& record) {
  JsonObject line;
  line.Add("at_ms", NowMs()).Add("node", node_).Add("listener", record.listener);
  line.Add("token", record.caller->token)
      .Add("role", record.caller->role == Role::kAdmin ? "admin" : "client")
      .Add("peer", record.caller->peer)
      .Add("message", record.message)
      .Add("outcome", record.refused.empty() ? "admitted" : "refused");
  if (!record.refused.empty()) line.Add("reason", record.refused);
  std::string text = line.str();
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_ == nullptr) {
    spdlog::info("audit: {}", text);
    return;
  }
  // Flushed at once: the record must survive the process being killed right after.
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fflush(file_);
}

}  // namespace shardkit::services
