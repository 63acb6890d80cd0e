#include "wal_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <rocksdb/transaction_log.h>

namespace shardkit::store::internal {
namespace {

// fdatasync (fsync for a directory) of `path` on a descriptor of its own: 0 or the errno.
int SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return errno;
  const int rc = directory ? ::fsync(fd) : ::fdatasync(fd);
  const int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

}  // namespace

int WalSync::Sync(rocksdb::DB& db, std::string& detail) {
  std::lock_guard lock(mu_);
  rocksdb::VectorLogPtr files;
  if (rocksdb::Status s = db.GetSortedWalFiles(files); !s.ok()) {
    detail = "rocksdb list WAL files: " + s.ToString();
    return EIO;
  }
  uint64_t newest = synced_from_;
  for (const auto& file : files) {
    if (file->Type() != rocksdb::kAliveLogFile || file->LogNumber() < synced_from_) continue;
    newest = std::max(newest, file->LogNumber());
    const std::string path = dir_ + file->PathName();
    const int error = SyncPath(path, false);
    if (error == ENOENT) continue;  // flushed and deleted meanwhile: its rows are in synced SSTs
    if (error != 0) {
      detail = "sync " + path + ": " + std::strerror(error);
      return error;
    }
  }
  if (newest != synced_from_) {
    if (const int error = SyncPath(dir_, true); error != 0) {
      detail = "sync " + dir_ + ": " + std::strerror(error);
      return error;
    }
  }
  synced_from_ = newest;
  return 0;
}

}  // namespace shardkit::store::internal
