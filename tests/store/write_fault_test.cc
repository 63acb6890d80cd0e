// WriteFault::ConfirmSynced, the check a synced commit passes before it is acknowledged: a file
// system that takes changes confirms it; a read-only one (a read-only bind mount, which needs
// root, as in CI) records the fault and refuses naming the store and the cause; a failure that
// says nothing about the file system (a missing directory) confirms.
#include "write_fault.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "store_test_util.h"

namespace shardkit::store::internal {
namespace {

using testing::TempDir;

TEST(store_write_fault, ConfirmSyncedPassesWhileTheFileSystemTakesChanges) {
  TempDir dir;
  WriteFault fault("entries");
  EXPECT_TRUE(fault.ConfirmSynced(dir.path()).ok());
  EXPECT_FALSE(fault.active());
  EXPECT_TRUE(fault.Health().writable);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));  // the unnamed file leaves nothing behind
}

TEST(store_write_fault, ConfirmSyncedSaysNothingOnAnErrorThatIsNotTheFileSystems) {
  TempDir dir;
  WriteFault fault("entries");
  EXPECT_TRUE(fault.ConfirmSynced(dir.path() + "/missing").ok());  // ENOENT
  EXPECT_FALSE(fault.active());
}

TEST(store_write_fault, ConfirmSyncedRefusesOnAReadOnlyFileSystemNamingTheCause) {
  TempDir dir;
  const std::string read_only = dir.path() + "/ro";
  std::filesystem::create_directories(read_only);
  const bool bound = mount(dir.path().c_str(), read_only.c_str(), nullptr, MS_BIND, nullptr) == 0;
  if (!bound ||
      mount(nullptr, read_only.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    const std::string problem = std::strerror(errno);
    if (bound) umount2(read_only.c_str(), MNT_DETACH);
    if (std::getenv("CI") != nullptr)
      GTEST_FAIL() << "cannot mount read-only: " << problem << " (CI is set: tests run as root)";
    GTEST_SKIP() << "cannot mount read-only: " << problem << " (run as root)";
  }
  WriteFault fault("entries");
  const Status refused = fault.ConfirmSynced(read_only);
  umount2(read_only.c_str(), MNT_DETACH);
  EXPECT_EQ(refused.code(), Code::kUnavailable) << refused.ToString();
  EXPECT_NE(refused.message().find("store 'entries' cannot write: read-only file system (the "
                                   "file system stopped as the commit was synced"),
            std::string::npos)
      << refused.message();
  EXPECT_NE(refused.details_json().find(R"("store":"entries","cause":"read-only file system")"),
            std::string::npos)
      << refused.details_json();
  const StorageHealth health = fault.Health();
  EXPECT_FALSE(health.writable);
  EXPECT_EQ(health.cause, "read-only file system");
  EXPECT_EQ(fault.Refuse().code(), Code::kUnavailable);  // later writes are refused too
}

}  // namespace
}  // namespace shardkit::store::internal
