// MemoryFileEnv: an Env that serves one read-only file held in memory.
//
// LogReader::OpenBuffer reads framed records that never touched a disk (a replicated epoch group)
// through the same reader as a segment file, by presenting them as a segment image under a fixed
// name. Every other operation fails with FailedPrecondition.
//
// Ownership: the Env owns the image; files it returns point into it and must be destroyed first.
// Thread-safety: const after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmsb/env.h"

namespace mmsb::log {

class MemoryFileEnv final : public Env {
 public:
  MemoryFileEnv(std::string name, std::vector<std::uint8_t> bytes)
      : name_(std::move(name)), bytes_(std::move(bytes)) {}

  const std::string& name() const { return name_; }

  Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override { return path == name_; }
  bool IsDirectory(const std::string&) override { return false; }
  Expected<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Expected<std::uint64_t> GetFileSize(const std::string& path) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status TruncateFile(const std::string& path, std::uint64_t size) override;
  Status SyncDir(const std::string& dir) override;
  Expected<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  std::string name_;
  std::vector<std::uint8_t> bytes_;
};

}  // namespace mmsb::log
