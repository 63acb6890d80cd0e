// TempDir: a fresh directory under the system temp dir for one test's RocksDB/SQLite files,
// journals and state files, removed with everything in it when the TempDir goes.
//
//   TempDir dir;                                  // /tmp/shardkit-test-Ab12Cd
//   options.path = dir.File("orders");            // a path inside it
//
// Thread-safety: immutable after construction.
#pragma once

#include <string>
#include <string_view>

namespace shardkit::testing {

class TempDir {
 public:
  // Creates the directory; throws std::runtime_error if it cannot (the test cannot run).
  explicit TempDir(std::string_view prefix = "shardkit-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name (not created).
  std::string File(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace shardkit::testing
