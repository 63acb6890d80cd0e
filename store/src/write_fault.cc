#include "write_fault.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <shardkit/message/json.h>

namespace shardkit::store::internal {
namespace {

constexpr int kDiskErrors[] = {ENOSPC, EROFS, EDQUOT, EIO};

}  // namespace

std::string WriteFault::CauseOfErrno(int error) {
  switch (error) {
    case ENOSPC:
      return "disk full";
    case EROFS:
      return "read-only file system";
    case EDQUOT:
      return "disk quota exceeded";
    case EIO:  // the device failed, or the file system stopped after an error (ext4's remount-ro)
      return "I/O error";
    default:
      return {};
  }
}

// The engines report a system error with strerror's text (RocksDB's IOError, for one).
std::string WriteFault::CauseOfText(std::string_view text) {
  for (int error : kDiskErrors) {
    if (text.find(std::strerror(error)) != std::string_view::npos) return CauseOfErrno(error);
  }
  return {};
}

void WriteFault::Set(std::string_view cause, std::string_view detail) {
  std::lock_guard lock(mu_);
  const bool disk = !cause.empty();
  const std::string what = disk ? std::string(cause) : "write failed";
  if (answer_.ok() || cause_ != what) {
    spdlog::warn("store '{}': writes stopped, {} ({}); reads go on, writes are retried", store_,
                 what, detail);
  }
  cause_ = what;
  last_retry_ = std::chrono::steady_clock::now();
  std::string message = fmt::format("store '{}' cannot write: {} ({})", store_, what, detail);
  std::string details = JsonObject().Add("store", store_).Add("cause", what).str();
  answer_ = disk ? Status::Unavailable(std::move(message), std::move(details))
                 : Status::Internal(std::move(message), std::move(details));
}

Status WriteFault::Refuse() {
  std::lock_guard lock(mu_);
  ++refused_;
  return answer_;
}

void WriteFault::Clear() {
  std::lock_guard lock(mu_);
  if (answer_.ok()) return;
  spdlog::info("store '{}': writes resumed after {}", store_, cause_);
  answer_ = Status::Ok();
  cause_.clear();
}

Status WriteFault::ConfirmSynced(const std::string& directory) {
  const int fd = open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);  // an unnamed file: closing it deletes it
    return Status::Ok();
  }
  const int error = errno;
  if (error != EROFS && error != EIO) return Status::Ok();
  Set(CauseOfErrno(error),
      fmt::format("the file system stopped as the commit was synced: {}", std::strerror(error)));
  return Refuse();
}

bool WriteFault::active() const {
  std::lock_guard lock(mu_);
  return !answer_.ok();
}

bool WriteFault::RetryDue() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_retry_ < kRetryInterval) return false;
  last_retry_ = now;
  return true;
}

StorageHealth WriteFault::Health() const {
  std::lock_guard lock(mu_);
  return StorageHealth{answer_.ok(), cause_, refused_};
}

}  // namespace shardkit::store::internal
