// Env::Default(): the POSIX file system.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "mmsb/env.h"

#include "core/clock.h"
#include "log/prewrite.h"

namespace mmsb {
namespace {

Status PosixError(std::string_view what, const std::string& path, int err) {
  std::string m = fmt::format("{} '{}': {}", what, path, std::strerror(err));
  if (err == ENOENT) return NotFound(std::move(m));
  return IOError(std::move(m));
}

class PosixWritableFile final : public WritableFile, public log::ZeroPrewriter {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::span<const std::uint8_t> data) override {
    const std::uint8_t* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      size_ += static_cast<std::uint64_t>(n);
    }
    return Status::Ok();
  }

  Status AppendV(std::span<const std::span<const std::uint8_t>> pieces) override {
    std::vector<struct iovec> iov;
    iov.reserve(pieces.size());
    for (const auto& p : pieces) {
      if (!p.empty()) iov.push_back({const_cast<std::uint8_t*>(p.data()), p.size()});
    }
    std::size_t i = 0;
    while (i < iov.size()) {
      const int n = static_cast<int>(std::min<std::size_t>(iov.size() - i, IOV_MAX));
      const ssize_t w = ::writev(fd_, iov.data() + i, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      size_ += static_cast<std::uint64_t>(w);
      // Skip what was written, including a partly written piece.
      std::size_t left = static_cast<std::size_t>(w);
      while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
      if (left > 0) {
        iov[i].iov_base = static_cast<std::uint8_t*>(iov[i].iov_base) + left;
        iov[i].iov_len -= left;
      }
    }
    return Status::Ok();
  }

  Status Sync() override {
    // fdatasync also persists the size, which is the metadata a reader needs.
    if (::fdatasync(fd_) != 0) return PosixError("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    // Zeros written ahead and not used: cut them (not synced; a reader takes them as the end).
    const int trc = zero_end_ > size_ ? ::ftruncate(fd_, static_cast<off_t>(size_)) : 0;
    const int terr = errno;
    const int rc = ::close(fd_);
    fd_ = -1;
    if (trc != 0) return PosixError("truncate", path_, terr);
    if (rc != 0) return PosixError("close", path_, errno);
    return Status::Ok();
  }

  std::uint64_t Size() const override { return size_; }

  Status PrewriteZeros(std::uint64_t ahead) override {
    if (size_ + ahead <= zero_end_) return Status::Ok();
    // Write twice what was asked for, so the next call comes after `ahead` more bytes.
    static const std::vector<std::uint8_t> kZeros(std::size_t{1} << 20, 0);
    std::uint64_t at = std::max(zero_end_, size_);
    const std::uint64_t end = size_ + 2 * ahead;
    while (at < end) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(end - at, kZeros.size()));
      const ssize_t w = ::pwrite(fd_, kZeros.data(), n, static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      at += static_cast<std::uint64_t>(w);
    }
    // The zeros and the file's new size are durable before any append lands on them.
    if (::fdatasync(fd_) != 0) return PosixError("fdatasync", path_, errno);
    zero_end_ = end;
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_ = 0;
  std::uint64_t zero_end_ = 0;  // the file holds synced zeros in [size_, zero_end_)
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd, std::uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixRandomAccessFile() override {
    if (map_ != nullptr) ::munmap(map_, size_);
    ::close(fd_);
  }

  // Maps the file; false (and no mapping) when it cannot.
  bool MapWhole() {
    if (size_ == 0) return false;
    // Mapped files are read whole (sealed segments, checkpoints): populate the page tables in
    // the mmap call rather than taking a fault per 4 KiB page as the reader advances (a fault is
    // a trap, and a costly one in a virtual machine).
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd_, 0);
    if (m == MAP_FAILED) return false;
    ::madvise(m, size_, MADV_SEQUENTIAL);
    ::madvise(m, size_, MADV_WILLNEED);
    map_ = static_cast<std::uint8_t*>(m);
    return true;
  }

  std::span<const std::uint8_t> Map() const override {
    return map_ ? std::span<const std::uint8_t>(map_, size_) : std::span<const std::uint8_t>();
  }

  Status Read(std::uint64_t offset, std::size_t n, std::uint8_t* scratch,
              std::size_t* got) const override {
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("read", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<std::size_t>(r);
    }
    *got = done;
    return Status::Ok();
  }

  std::uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_;
  std::uint8_t* map_ = nullptr;
};

// flock() locks belong to the open file description, so a second open of the same file conflicts
// in this process as in any other.
class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError("cannot create", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return PosixError("cannot stat", path, err);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return IOError(fmt::format("'{}' is a directory", path));
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<RandomAccessFile>(
        new PosixRandomAccessFile(path, fd, static_cast<std::uint64_t>(st.st_size)));
  }

  Expected<std::unique_ptr<RandomAccessFile>> NewMappedFile(const std::string& path) override {
    auto f = NewRandomAccessFile(path);
    if (!f.ok()) return f;
    static_cast<PosixRandomAccessFile*>(f->get())->MapWhole();  // unmapped reads still work
    return f;
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  bool IsDirectory(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Expected<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("cannot list", dir, errno);
    std::vector<std::string> out;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      out.emplace_back(e->d_name);
    }
    ::closedir(d);
    return out;
  }

  Expected<std::uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("cannot stat", path, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return PosixError("cannot create directory", dir, errno);
    if (!IsDirectory(dir)) return IOError(fmt::format("'{}' exists and is not a directory", dir));
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("cannot remove", path, errno);
    return Status::Ok();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return PosixError(fmt::format("cannot rename to '{}':", to), from, errno);
    return Status::Ok();
  }

  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open", path, errno);
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = PosixError("cannot truncate", path, errno);
    } else if (::fsync(fd) != 0) {
      s = PosixError("fsync", path, errno);
    }
    ::close(fd);
    return s;
  }

  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("cannot open directory", dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync directory", dir, errno);
    ::close(fd);
    return s;
  }

  Expected<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError("cannot open lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {};
      const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      ::close(fd);
      if (err == EWOULDBLOCK) {
        std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
          holder.pop_back();
        return FailedPrecondition(fmt::format("'{}' is locked by another writer{}", path,
                                              holder.empty() ? "" : " (pid " + holder + ")"));
      }
      return PosixError("cannot lock", path, err);
    }
    // Record the holder for the message a second writer gets; best effort.
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }
};

}  // namespace

std::uint64_t Env::NowUnixNanos() { return UnixNanos(); }

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;
  return env;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

}  // namespace mmsb
