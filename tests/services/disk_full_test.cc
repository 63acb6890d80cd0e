// A full disk under each engine, on a real `shardkit serve` node whose store lives on a small
// tmpfs (docs/store.md, "A full disk"): writers fill it; the node stays up, reads are served,
// writes are refused `unavailable` naming the store and the cause (valid JSON over HTTP too), and
// /health and /metrics say so; a filler file is deleted and writes resume; after kill -9 and a
// restart every acknowledged write loads. Mounting needs root (as in CI).
#include <gmock/gmock.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "serve_process.h"
#include "shardkit/message/json.h"
#include "test_util.h"

namespace shardkit::services::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;

// A tmpfs of `bytes` mounted on `path` for the test's lifetime.
class Tmpfs {
 public:
  Tmpfs(const std::string& path, uint64_t bytes) : path_(path) {
    std::filesystem::create_directories(path);
    const std::string options = fmt::format("size={}", bytes);
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      problem_ = fmt::format("cannot mount a tmpfs on {}: {}", path, std::strerror(errno));
    }
  }
  ~Tmpfs() {
    if (problem_.empty()) umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }
  uint64_t FreeBytes() const {
    struct statvfs fs {};
    return statvfs(path_.c_str(), &fs) == 0 ? uint64_t{fs.f_bavail} * fs.f_frsize : 0;
  }

 private:
  std::string path_;
  std::string problem_;
};

std::string Node(const std::string& disk, const std::string& backend) {
  return fmt::format(R"(
[node]
name = "disk"
[[listener]]
url = "tcp://127.0.0.1:0"
[[listener]]
url = "http://127.0.0.1:0"
[[service]]
name = "entries"
type = "store"
backend = "{}"
path = "{}/store"
)",
                     backend, disk);
}

// The payload of entity `id`, a size that fills the small disk in a few hundred writes.
std::string PayloadOf(const std::string& id) {
  return std::string(4000, static_cast<char>('a' + id.size() % 26)) + id;
}

std::string SaveJson(const std::string& id) {
  return fmt::format(R"({{"store":"save","kind":"entry","ent":{{"id":"{}","p":"{}"}}}})", id,
                     PayloadOf(id));
}

// An HTTP exchange on a fresh connection: the whole response.
std::string Http(const std::string& url, const std::string& request_line, std::string_view body) {
  RawSocket socket(PortOf(url));
  EXPECT_TRUE(socket.Send(
      fmt::format("{}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
                  "Connection: close\r\n\r\n{}",
                  request_line, body.size(), body)));
  return socket.Read(1 << 20, std::chrono::seconds(5));
}

std::string BodyOf(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// The refusal every write gets while the disk is full.
void ExpectRefusedClearly(const Status& status) {
  EXPECT_EQ(status.code(), Code::kUnavailable) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("store 'entries' cannot write: disk full"));
  EXPECT_THAT(status.details_json(), HasSubstr(R"("store":"entries","cause":"disk full")"));
}

class DiskFull : public ::testing::TestWithParam<std::string> {};

TEST_P(DiskFull, WritesAreRefusedReadsGoOnAndWritesResumeWithNothingAcknowledgedLost) {
  TempDir dir;
  Tmpfs disk(dir.File("disk"), 8 << 20);
  if (!disk.ok()) {
    if (std::getenv("CI") != nullptr)
      GTEST_FAIL() << disk.problem() << " (CI is set: this test runs as root, as CI does)";
    GTEST_SKIP() << disk.problem() << " (run as root)";
  }
  const std::string config = dir.Write("node.toml", Node(dir.File("disk"), GetParam()));
  auto serve = std::make_unique<ServeProcess>(dir, config);
  auto urls = serve->WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  // A filler leaves the store about 1.5 MB, so that deleting it gives room back.
  const std::string filler = dir.File("disk") + "/filler";
  std::ofstream(filler) << std::string(disk.FreeBytes() - (3 << 19), 'f');

  // Four writers until each has been refused 5 times.
  IoRuntime runtime(2);
  std::mutex mu;
  std::set<std::string> acknowledged;  // ids
  std::atomic<int> unexpected{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto client = Client(runtime, urls[0]);
      int refused = 0;
      for (int i = 0; refused < 5 && i < 5000; ++i) {
        const std::string id = fmt::format("w{}-{}", w, i);
        auto r = CallAndWait(*client, Msg(SaveJson(id)));
        std::lock_guard lock(mu);
        if (r.ok()) {
          acknowledged.insert(id);
        } else if (r.status().code() == Code::kUnavailable) {
          ExpectRefusedClearly(r.status());
          ++refused;
        } else if (++unexpected <= 3) {
          ADD_FAILURE() << r.status().ToString();
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(unexpected.load(), 0);
  ASSERT_GT(acknowledged.size(), 50u) << "the disk filled before the store had written much";
  std::printf("%s: %zu writes acknowledged before the disk was full\n", GetParam().c_str(),
              acknowledged.size());

  // Full: the node is up, reads are served, writes are refused in valid JSON naming the store.
  auto client = Client(runtime, urls[0]);
  auto read = CallAndWait(*client, Msg(R"({"store":"load","kind":"entry","id":"w0-0"})"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  auto refused = CallAndWait(*client, Msg(SaveJson("late")));
  ASSERT_FALSE(refused.ok());
  ExpectRefusedClearly(refused.status());
  const std::string body = BodyOf(Http(urls[1], "POST /act HTTP/1.1", SaveJson("late")));
  auto parsed = ParseJson(body, "reply");
  ASSERT_TRUE(parsed.ok()) << body;
  EXPECT_THAT(body, HasSubstr(R"("code":"unavailable")"));
  EXPECT_THAT(body, HasSubstr("store 'entries' cannot write: disk full"));
  const std::string health = BodyOf(Http(urls[1], "GET /health HTTP/1.1", ""));
  EXPECT_THAT(health, HasSubstr(R"("status":"degraded")"));
  EXPECT_THAT(health, HasSubstr(R"("entries":{"writable":false,"cause":"disk full")"));
  EXPECT_THAT(Http(urls[1], "GET /metrics HTTP/1.1", ""),
              HasSubstr("shardkit_store_writable{store=\"entries\"} 0\n"));

  // Space returns: writes resume (the first within a few seconds), health is ok again.
  std::filesystem::remove(filler);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<Message> resumed = Status::Internal("not tried");
  while (!resumed.ok() && std::chrono::steady_clock::now() < until) {
    resumed = CallAndWait(*client, Msg(SaveJson("resumed")));
    if (!resumed.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  acknowledged.insert("resumed");
  for (int i = 0; i < 50; ++i) {
    const std::string id = fmt::format("after-{}", i);
    auto r = CallAndWait(*client, Msg(SaveJson(id)));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    acknowledged.insert(id);
  }
  EXPECT_THAT(BodyOf(Http(urls[1], "GET /health HTTP/1.1", "")),
              HasSubstr(R"("entries":{"writable":true,"cause":"")"));

  // kill -9 and a restart: every acknowledged write loads as it was saved.
  serve->Signal(SIGKILL);
  ASSERT_EQ(serve->WaitExit(std::chrono::seconds(10)), 128 + SIGKILL);
  serve = std::make_unique<ServeProcess>(dir, config);
  urls = serve->WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  client = Client(runtime, urls[0]);
  size_t lost = 0;
  for (const std::string& id : acknowledged) {
    auto r = CallAndWait(*client,
                         Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
    const bool same = r.ok() && r->GetObjectJson("ent").value_or("").find(
                                    fmt::format(R"("p":"{}")", PayloadOf(id))) != std::string::npos;
    if (!same && ++lost <= 3)
      ADD_FAILURE() << id << ": " << (r.ok() ? "changed" : r.status().ToString());
  }
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged writes";
}

// An ext4 file system in a file, mounted through a loop device with errors=remount-ro. Linux
// refuses `mount -o remount,ro` while files are open for writing (EBUSY, tmpfs and bind mounts
// alike); what turns a file system read-only under a running store is an error the kernel finds,
// which ext4's trigger_fs_error raises on demand. Such a file system stays read-only until it is
// unmounted and checked.
class Ext4Disk {
 public:
  Ext4Disk(std::string image, std::string path) : image_(std::move(image)), path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    if (!Run(fmt::format("truncate -s 256M {0} && mkfs.ext4 -q -F {0}", image_)) || !Mount())
      problem_ = fmt::format("cannot make and mount an ext4 loop file system on {}", path_);
  }
  ~Ext4Disk() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }

  // The kernel's own reaction to a file system error: read-only at once, open files included.
  bool TurnReadOnly() {
    std::string device;
    std::ifstream mounts("/proc/mounts");
    for (std::string source, target, rest;
         mounts >> source >> target && std::getline(mounts, rest);)
      if (target == path_) device = source.substr(source.rfind('/') + 1);
    std::ofstream trigger(fmt::format("/sys/fs/ext4/{}/trigger_fs_error", device));
    trigger << "1\n";
    trigger.close();
    return !device.empty() && trigger.good();
  }
  // Unmount, repair (e2fsck exits 1 after fixing the recorded error) and mount again.
  bool CheckAndMountAgain() {
    if (umount2(path_.c_str(), 0) != 0) return false;
    mounted_ = false;
    return Run(fmt::format("e2fsck -fy {} >/dev/null 2>&1; test $? -le 1", image_)) && Mount();
  }

 private:
  static bool Run(const std::string& command) { return std::system(command.c_str()) == 0; }
  bool Mount() {
    mounted_ = Run(fmt::format("mount -o loop,errors=remount-ro {} {}", image_, path_));
    return mounted_;
  }

  std::string image_, path_, problem_;
  bool mounted_ = false;
};

class ReadOnlyDisk : public ::testing::TestWithParam<std::string> {};

// Files the store had open fail with EIO once ext4 stops, files it opens after with EROFS.
constexpr const char* kCause = "(read-only file system|I/O error)";

TEST_P(ReadOnlyDisk, WritesAreRefusedNamingTheCauseReadsGoOnAndNothingAcknowledgedIsLost) {
  TempDir dir;
  Ext4Disk disk(dir.File("disk.img"), dir.File("disk"));
  if (!disk.ok()) {
    if (std::getenv("CI") != nullptr)
      GTEST_FAIL() << disk.problem() << " (CI is set: this test runs as root, as CI does)";
    GTEST_SKIP() << disk.problem() << " (run as root)";
  }
  // Every acknowledged write synced: the unmount below drops what the page cache still held.
  const std::string config =
      dir.Write("node.toml", Node(dir.File("disk"), GetParam()) + "durability = \"sync\"\n");
  auto serve = std::make_unique<ServeProcess>(dir, config);
  auto urls = serve->WaitReady();
  ASSERT_EQ(urls.size(), 2u);

  IoRuntime runtime(2);
  std::mutex mu;
  std::set<std::string> acknowledged, causes;
  std::set<std::string> late;  // acknowledged once the error was being raised (see below)
  std::atomic<bool> failing{false};
  std::atomic<int> written{0}, unexpected{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      auto client = Client(runtime, urls[0]);
      int refused = 0;
      for (int i = 0; refused < 5 && i < 20000; ++i) {
        const std::string id = fmt::format("w{}-{}", w, i);
        auto r = CallAndWait(*client, Msg(SaveJson(id)));
        std::lock_guard lock(mu);
        if (r.ok()) {
          acknowledged.insert(id);
          if (failing) late.insert(id);
          ++written;
        } else if (r.status().code() == Code::kUnavailable) {
          EXPECT_THAT(r.status().message(),
                      ContainsRegex(std::string("store 'entries' cannot write: ") + kCause));
          EXPECT_THAT(r.status().details_json(),
                      ContainsRegex(std::string(R"("store":"entries","cause":")") + kCause));
          causes.insert(r.status().details_json());
          ++refused;
        } else if (++unexpected <= 3) {
          ADD_FAILURE() << r.status().ToString();
        }
      }
    });
  }
  while (written.load() < 100) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  failing = true;
  ASSERT_TRUE(disk.TurnReadOnly());
  for (std::thread& t : writers) t.join();
  ASSERT_EQ(unexpected.load(), 0);

  // Read-only: the node is up, reads are served, writes refused naming the cause, health says so.
  auto client = Client(runtime, urls[0]);
  auto read = CallAndWait(*client, Msg(R"({"store":"load","kind":"entry","id":"w0-0"})"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  const std::string body = BodyOf(Http(urls[1], "POST /act HTTP/1.1", SaveJson("late")));
  ASSERT_TRUE(ParseJson(body, "reply").ok()) << body;
  EXPECT_THAT(body, ContainsRegex(std::string("store 'entries' cannot write: ") + kCause));
  EXPECT_THAT(BodyOf(Http(urls[1], "GET /health HTTP/1.1", "")),
              ContainsRegex(std::string(R"("entries":\{"writable":false,"cause":")") + kCause));

  // Repaired and mounted again: the node restarts on it, writes go on, and every acknowledged
  // write loads as it was saved.
  serve->Signal(SIGKILL);
  ASSERT_EQ(serve->WaitExit(std::chrono::seconds(10)), 128 + SIGKILL);
  ASSERT_TRUE(disk.CheckAndMountAgain());
  serve = std::make_unique<ServeProcess>(dir, config);
  urls = serve->WaitReady();
  ASSERT_EQ(urls.size(), 2u);
  client = Client(runtime, urls[0]);
  auto resumed = CallAndWait(*client, Msg(SaveJson("resumed")));
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  // Every acknowledged write loads, those acknowledged while ext4 was stopping included: an
  // fsync that raced the journal abort reported success for data the abort discarded, until the
  // stores confirmed each synced commit (docs/store.md, "A full disk").
  size_t lost = 0;
  for (const std::string& id : acknowledged) {
    auto r = CallAndWait(*client,
                         Msg(fmt::format(R"({{"store":"load","kind":"entry","id":"{}"}})", id)));
    const bool same = r.ok() && r->GetObjectJson("ent").value_or("").find(
                                    fmt::format(R"("p":"{}")", PayloadOf(id))) != std::string::npos;
    if (!same && ++lost <= 3)
      ADD_FAILURE() << id << (late.count(id) ? " (acknowledged as the error was raised)" : "")
                    << ": " << (r.ok() ? "changed" : r.status().ToString());
  }
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged writes, " << late.size()
                      << " of them as the error was raised";
  std::printf("%s: %zu writes acknowledged, %zu of them as the error was raised; refusals:",
              GetParam().c_str(), acknowledged.size(), late.size());
  for (const std::string& cause : causes) std::printf(" %s", cause.c_str());
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(Engines, ReadOnlyDisk, ::testing::Values("rocksdb", "sqlite"),
                         [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Engines, DiskFull, ::testing::Values("rocksdb", "sqlite"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace shardkit::services::testing
