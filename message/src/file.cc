#include "shardkit/message/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace shardkit {

Status WriteFileAtomically(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::Internal(fmt::format("cannot write {}: {}", tmp, strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal(fmt::format("cannot write {}", tmp));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Status::Internal(fmt::format("cannot rename {}: {}", tmp, strerror(errno)));
  return Status::Ok();
}

}  // namespace shardkit
