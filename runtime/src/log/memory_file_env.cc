// MemoryFileEnv: one read-only in-memory file behind the Env interface.
#include "log/memory_file_env.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mmsb::log {
namespace {

class MemoryFile final : public RandomAccessFile {
 public:
  explicit MemoryFile(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  Status Read(std::uint64_t offset, std::size_t n, std::uint8_t* scratch,
              std::size_t* got) const override {
    const std::uint64_t at = std::min<std::uint64_t>(offset, bytes_.size());
    const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, bytes_.size() - at));
    if (k != 0) std::memcpy(scratch, bytes_.data() + at, k);
    *got = k;
    return Status::Ok();
  }
  std::uint64_t Size() const override { return bytes_.size(); }
  std::span<const std::uint8_t> Map() const override { return bytes_; }

 private:
  std::span<const std::uint8_t> bytes_;
};

Status Unsupported(const std::string& what, const std::string& path) {
  return FailedPrecondition(
      fmt::format("{} '{}': the in-memory file env is read-only", what, path));
}

}  // namespace

Expected<std::unique_ptr<WritableFile>> MemoryFileEnv::NewWritableFile(const std::string& path) {
  return Unsupported("write", path);
}

Expected<std::unique_ptr<RandomAccessFile>> MemoryFileEnv::NewRandomAccessFile(
    const std::string& path) {
  if (path != name_) return NotFound(fmt::format("no file '{}'", path));
  return std::unique_ptr<RandomAccessFile>(new MemoryFile(bytes_));
}

Expected<std::vector<std::string>> MemoryFileEnv::GetChildren(const std::string& dir) {
  return Unsupported("list", dir);
}

Expected<std::uint64_t> MemoryFileEnv::GetFileSize(const std::string& path) {
  if (path != name_) return NotFound(fmt::format("no file '{}'", path));
  return static_cast<std::uint64_t>(bytes_.size());
}

Status MemoryFileEnv::CreateDir(const std::string& dir) { return Unsupported("create", dir); }
Status MemoryFileEnv::RemoveFile(const std::string& path) { return Unsupported("remove", path); }
Status MemoryFileEnv::RenameFile(const std::string& from, const std::string&) {
  return Unsupported("rename", from);
}
Status MemoryFileEnv::TruncateFile(const std::string& path, std::uint64_t) {
  return Unsupported("truncate", path);
}
Status MemoryFileEnv::SyncDir(const std::string& dir) { return Unsupported("sync", dir); }
Expected<std::unique_ptr<FileLock>> MemoryFileEnv::LockFile(const std::string& path) {
  return Unsupported("lock", path);
}

}  // namespace mmsb::log
