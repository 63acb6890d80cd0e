// WriteFault: the disk fault that stops a store's writes (a full, read-only or over-quota file
// system, or one failing with I/O errors), shared by the engines. A backend records the fault when
// a write fails, answers writes while it lasts with an error naming the store and the cause, and
// clears it once a write goes through again; reads never look at it. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <shardkit/message/status.h>
#include <shardkit/store/entity_store.h>

namespace shardkit::store::internal {

class WriteFault {
 public:
  explicit WriteFault(std::string store) : store_(std::move(store)) {}

  // "disk full", "read-only file system", "disk quota exceeded" or "I/O error" for an errno or an
  // engine's error text that carries one; empty for any other error.
  static std::string CauseOfErrno(int error);
  static std::string CauseOfText(std::string_view text);

  // Records a failed write or background write: `cause` (empty: not a disk fault, the engine's
  // `detail` says what). Its answer is `unavailable` for a disk fault, else `internal`. Logged
  // once a fault.
  void Set(std::string_view cause, std::string_view detail);
  // A write refused while the fault lasts (counted), with the answer Set recorded.
  Status Refuse();
  // Ends the fault (logged) after a write went through; nothing when there was none.
  void Clear();
  // After a commit the engine synced: OK while `directory`'s file system still takes changes,
  // else the fault is recorded and the commit refused (applied, but whether it lasts is unknown).
  // Linux's fsync can report success for data whose metadata an ext4 journal abort discards:
  // the abort ends the running journal transaction without writing it, an fsync that waits for
  // it then finds it done, and ext4 marks itself stopped only milliseconds later. Creating a
  // file starts a journal transaction, which an aborted journal refuses; so the store creates
  // (and drops) an unnamed one. Only EROFS and EIO count: any other failure says nothing.
  Status ConfirmSynced(const std::string& directory);
  bool active() const;
  // While the fault lasts: whether a recovery attempt is due (at most one per interval), so a
  // stream of refused writes does not turn into a stream of recovery attempts.
  bool RetryDue();
  StorageHealth Health() const;

 private:
  static constexpr std::chrono::milliseconds kRetryInterval{500};

  const std::string store_;
  mutable std::mutex mu_;
  Status answer_;  // guarded by mu_: the answer while the fault lasts (OK: no fault)
  std::string cause_;
  uint64_t refused_ = 0;
  std::chrono::steady_clock::time_point last_retry_;
};

}  // namespace shardkit::store::internal
