// FaultEnv: an in-memory Env that models what survives a crash, for fault-injection tests.
//
// Each file keeps its bytes and how many of them were synced (and how far zeros were written
// ahead of its appends, which survive a crash); each directory entry (creation,
// rename, removal) is volatile until SyncDir on its directory. Crash() applies what a power cut
// would: unsynced file bytes are dropped (or, with the torn options, partly kept or garbled),
// and unsynced directory changes are undone. After Crash() the Env works again, as after a reboot.
//
// Failure injection: SetCrashAfter(n) makes the n-th mutating operation from now (append, sync,
// create, rename, remove, truncate, sync-dir) and every later one fail with IOError("injected
// crash"), so a writer stops exactly there; tests then call Crash() and recover.
//
// Thread-safety: all methods may be called from many threads (one mutex).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mmsb/env.h"

namespace mmsb::testing {

class FaultEnv final : public Env {
 public:
  enum class Tear {
    kDropUnsynced,  // unsynced bytes vanish
    kKeepPrefix,    // a random prefix of the unsynced bytes survives
    kGarbleTail,    // a random prefix survives and the rest of the last 512-byte block is garbage
  };

  explicit FaultEnv(std::uint64_t seed = 1) : rng_(seed) {}

  Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  // A snapshot of the file whose Map() is the snapshot itself.
  Expected<std::unique_ptr<RandomAccessFile>> NewMappedFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  bool IsDirectory(const std::string& path) override;
  Expected<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Expected<std::uint64_t> GetFileSize(const std::string& path) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status TruncateFile(const std::string& path, std::uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  Expected<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Fail the n-th mutating operation from now and all later ones (n >= 1); 0 disables.
  void SetCrashAfter(std::uint64_t n);
  // Makes every file Sync() sleep this long first, as a disk's flush takes time (0: none).
  void SetSyncDelay(std::chrono::microseconds d) { sync_delay_us_ = d.count(); }
  // Mutating operations performed so far (counts only those that succeeded).
  std::uint64_t ops() const;
  bool crashed() const;
  // Applies a power cut, then lets operations succeed again.
  void Crash(Tear tear);

  // Direct access for corruption tests.
  std::vector<std::uint8_t> Contents(const std::string& path) const;
  void SetContents(const std::string& path, std::vector<std::uint8_t> bytes);  // durable

 private:
  friend class FaultWritableFile;
  friend class FaultFileLock;
  struct File {
    std::vector<std::uint8_t> data;
    std::uint64_t synced = 0;
    // Zeros written ahead (log::ZeroPrewriter), synced: the file reads as `data` then
    // zeros up to here. A crash that loses unsynced appends leaves these zeros in their place.
    std::uint64_t zeros_end = 0;
    std::vector<std::uint8_t> Physical() const;
  };
  struct Entry {
    std::shared_ptr<File> file;  // null: a directory
  };
  Status Mutate();  // counts an operation, or fails it when crashed
  Expected<std::unique_ptr<RandomAccessFile>> Open(const std::string& path, bool mapped);
  static std::string Parent(const std::string& path);

  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::map<std::string, Entry> live_;     // what the running program sees
  std::map<std::string, Entry> durable_;  // what a crash leaves (directory entries)
  std::set<std::string> locks_;
  std::uint64_t ops_ = 0;
  std::uint64_t crash_at_ = 0;  // absolute op index that fails first; 0 = never
  bool crashed_ = false;
  std::atomic<std::int64_t> sync_delay_us_{0};
};

}  // namespace mmsb::testing
