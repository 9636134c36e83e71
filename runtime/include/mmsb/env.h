// Env: the file-system seam under the transaction log and checkpoints.
//
// Everything the log does to storage goes through an Env, so tests can substitute an in-memory
// file system that drops unsynced data at a simulated crash (see tests/unit/log/fault_env.h),
// and fuzzers can feed bytes without touching disk. Env::Default() is the POSIX implementation.
//
// Durability model (what an Env must honour and what the log relies on):
//   - WritableFile::Sync() makes the file's appended bytes and its size durable (fdatasync).
//   - A newly created, renamed or removed directory entry is durable only after SyncDir() on its
//     directory.
//   - TruncateFile() is durable when it returns.
// Errors are Status values: IO for the storage failing, NotFound for a missing path,
// FailedPrecondition for a lock held by someone else.
//
// Ownership: files returned by an Env are owned by the caller and must be destroyed before the
// Env. Env::Default() lives for the whole process.
// Thread-safety: an Env may be used from many threads at once. One file object must not be used
// by two threads at once unless its class says so (RandomAccessFile::Read is thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/status.h"

namespace mmsb {

// A file written sequentially. Append hands bytes to the OS (no user-space buffering: callers
// batch their own writes); Sync makes them durable.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::span<const std::uint8_t> data) = 0;
  // Appends the pieces in order, as one write where the Env can (writev).
  virtual Status AppendV(std::span<const std::span<const std::uint8_t>> pieces) {
    for (const auto& p : pieces) MMSB_RETURN_IF_ERROR(Append(p));
    return Status::Ok();
  }
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Bytes in the file (as appended so far).
  virtual std::uint64_t Size() const = 0;
};

// A file read at arbitrary offsets. Size() is fixed when the file is opened.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at `offset` into `scratch`; *got receives how many (fewer only at EOF).
  virtual Status Read(std::uint64_t offset, std::size_t n, std::uint8_t* scratch,
                      std::size_t* got) const = 0;
  virtual std::uint64_t Size() const = 0;
  // The whole file as one read-only span when it is memory-mapped (valid while this object
  // lives), else empty. Readers use it to avoid copying.
  virtual std::span<const std::uint8_t> Map() const { return {}; }
};

// An exclusive lock held while the object lives.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system. Never null.
  static Env* Default();

  // Creates (or truncates) `path` for writing.
  virtual Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  // Like NewRandomAccessFile, but memory-mapped where the Env can (RandomAccessFile::Map). Only
  // for files nobody truncates while they are open (sealed segments, checkpoints): touching a
  // truncated mapping kills the process. The default does not map.
  virtual Expected<std::unique_ptr<RandomAccessFile>> NewMappedFile(const std::string& path) {
    return NewRandomAccessFile(path);
  }

  virtual bool FileExists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, unsorted, without "." and "..".
  virtual Expected<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual Expected<std::uint64_t> GetFileSize(const std::string& path) = 0;
  // Creates `dir` if it does not exist (its parent must exist).
  virtual Status CreateDir(const std::string& dir) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (POSIX rename).
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Cuts `path` to `size` bytes and makes that durable.
  virtual Status TruncateFile(const std::string& path, std::uint64_t size) = 0;
  // Makes the entries of `dir` (creations, renames, removals) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive lock on `path` (created if missing), held until the FileLock is destroyed.
  // Another holder, in this process or another, gets FailedPrecondition naming the path and,
  // where known, the holder's pid.
  virtual Expected<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
  // Wall-clock time for commit records.
  virtual std::uint64_t NowUnixNanos();
};

// Joins a directory and a name with one '/'.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace mmsb
