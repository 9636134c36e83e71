#include "fault_env.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "log/prewrite.h"

namespace mmsb::testing {

class FaultWritableFile final : public WritableFile, public log::ZeroPrewriter {
 public:
  FaultWritableFile(FaultEnv* env, std::shared_ptr<FaultEnv::File> f)
      : env_(env), f_(std::move(f)) {}
  Status Append(std::span<const std::uint8_t> data) override {
    std::lock_guard<std::mutex> l(env_->mu_);
    MMSB_RETURN_IF_ERROR(env_->Mutate());
    f_->data.insert(f_->data.end(), data.begin(), data.end());
    return Status::Ok();
  }
  Status Sync() override {
    // A disk's flush takes time; committers queue meanwhile (group commit tests need that).
    const auto delay = std::chrono::microseconds(env_->sync_delay_us_.load());
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard<std::mutex> l(env_->mu_);
    MMSB_RETURN_IF_ERROR(env_->Mutate());
    f_->synced = f_->data.size();
    return Status::Ok();
  }
  Status Close() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    f_->zeros_end = 0;  // the unused zeros are cut, as the POSIX file does
    return Status::Ok();
  }
  std::uint64_t Size() const override {
    std::lock_guard<std::mutex> l(env_->mu_);
    return f_->data.size();
  }
  // As the POSIX file (log/prewrite.h): zeros ahead, synced along with everything appended.
  Status PrewriteZeros(std::uint64_t ahead) override {
    std::lock_guard<std::mutex> l(env_->mu_);
    if (f_->data.size() + ahead <= f_->zeros_end) return Status::Ok();
    MMSB_RETURN_IF_ERROR(env_->Mutate());
    f_->zeros_end = f_->data.size() + 2 * ahead;
    f_->synced = f_->data.size();
    return Status::Ok();
  }

 private:
  FaultEnv* env_;
  std::shared_ptr<FaultEnv::File> f_;
};

namespace {

class MemRandomAccessFile final : public RandomAccessFile {
 public:
  MemRandomAccessFile(std::vector<std::uint8_t> data, bool mapped)
      : data_(std::move(data)), mapped_(mapped) {}
  Status Read(std::uint64_t offset, std::size_t n, std::uint8_t* scratch,
              std::size_t* got) const override {
    if (offset >= data_.size()) {
      *got = 0;
      return Status::Ok();
    }
    *got = static_cast<std::size_t>(std::min<std::uint64_t>(n, data_.size() - offset));
    std::memcpy(scratch, data_.data() + offset, *got);
    return Status::Ok();
  }
  std::uint64_t Size() const override { return data_.size(); }
  std::span<const std::uint8_t> Map() const override {
    return mapped_ ? std::span<const std::uint8_t>(data_) : std::span<const std::uint8_t>();
  }

 private:
  std::vector<std::uint8_t> data_;  // a snapshot: later appends are not seen, like a sized open
  bool mapped_;
};

}  // namespace

class FaultFileLock final : public FileLock {
 public:
  FaultFileLock(FaultEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
  ~FaultFileLock() override {
    std::lock_guard<std::mutex> l(env_->mu_);
    env_->locks_.erase(path_);
  }

 private:
  FaultEnv* env_;
  std::string path_;
};

std::string FaultEnv::Parent(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::vector<std::uint8_t> FaultEnv::File::Physical() const {
  std::vector<std::uint8_t> out = data;
  if (zeros_end > out.size()) out.resize(zeros_end, 0);
  return out;
}

Status FaultEnv::Mutate() {
  if (crashed_) return IOError("injected crash");
  if (crash_at_ != 0 && ops_ + 1 >= crash_at_) {
    crashed_ = true;
    return IOError("injected crash");
  }
  ++ops_;
  return Status::Ok();
}

Expected<std::unique_ptr<WritableFile>> FaultEnv::NewWritableFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  MMSB_RETURN_IF_ERROR(Mutate());
  if (!live_.count(Parent(path))) return NotFound("no directory for " + path);
  auto f = std::make_shared<File>();
  live_[path] = {f};
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, f));
}

Expected<std::unique_ptr<RandomAccessFile>> FaultEnv::Open(const std::string& path, bool mapped) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = live_.find(path);
  if (it == live_.end() || !it->second.file) return NotFound("cannot open '" + path + "'");
  return std::unique_ptr<RandomAccessFile>(
      new MemRandomAccessFile(it->second.file->Physical(), mapped));
}

Expected<std::unique_ptr<RandomAccessFile>> FaultEnv::NewRandomAccessFile(const std::string& path) {
  return Open(path, false);
}

Expected<std::unique_ptr<RandomAccessFile>> FaultEnv::NewMappedFile(const std::string& path) {
  return Open(path, true);
}

bool FaultEnv::FileExists(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return live_.count(path) > 0;
}

bool FaultEnv::IsDirectory(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = live_.find(path);
  return it != live_.end() && !it->second.file;
}

Expected<std::vector<std::string>> FaultEnv::GetChildren(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  if (!live_.count(dir)) return NotFound("no directory '" + dir + "'");
  std::vector<std::string> out;
  const std::string prefix = dir + "/";
  for (const auto& [path, e] : live_) {
    if (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
        path.find('/', prefix.size()) == std::string::npos) {
      out.push_back(path.substr(prefix.size()));
    }
  }
  return out;
}

Expected<std::uint64_t> FaultEnv::GetFileSize(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = live_.find(path);
  if (it == live_.end() || !it->second.file) return NotFound("no file '" + path + "'");
  return std::max<std::uint64_t>(it->second.file->data.size(), it->second.file->zeros_end);
}

Status FaultEnv::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  if (live_.count(dir)) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Mutate());
  live_[dir] = {nullptr};
  durable_[dir] = {nullptr};  // directories themselves are made durable at once (simplification)
  return Status::Ok();
}

Status FaultEnv::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  MMSB_RETURN_IF_ERROR(Mutate());
  if (!live_.erase(path)) return NotFound("no file '" + path + "'");
  return Status::Ok();
}

Status FaultEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  MMSB_RETURN_IF_ERROR(Mutate());
  auto it = live_.find(from);
  if (it == live_.end()) return NotFound("no file '" + from + "'");
  live_[to] = it->second;
  live_.erase(from);
  return Status::Ok();
}

Status FaultEnv::TruncateFile(const std::string& path, std::uint64_t size) {
  std::lock_guard<std::mutex> l(mu_);
  MMSB_RETURN_IF_ERROR(Mutate());
  auto it = live_.find(path);
  if (it == live_.end() || !it->second.file) return NotFound("no file '" + path + "'");
  File& f = *it->second.file;
  f.data = f.Physical();
  f.zeros_end = 0;
  f.data.resize(std::min<std::uint64_t>(f.data.size(), size));
  f.synced = std::min<std::uint64_t>(f.synced, f.data.size());
  // Durable on return, as the Env contract says: the kept bytes are synced.
  f.synced = f.data.size();
  return Status::Ok();
}

Status FaultEnv::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  MMSB_RETURN_IF_ERROR(Mutate());
  const std::string prefix = dir + "/";
  auto in_dir = [&](const std::string& p) {
    return p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
           p.find('/', prefix.size()) == std::string::npos;
  };
  for (auto it = durable_.begin(); it != durable_.end();) {
    it = in_dir(it->first) ? durable_.erase(it) : std::next(it);
  }
  for (const auto& [p, e] : live_) {
    if (in_dir(p)) durable_[p] = e;
  }
  return Status::Ok();
}

Expected<std::unique_ptr<FileLock>> FaultEnv::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  if (locks_.count(path)) return FailedPrecondition("'" + path + "' is locked by another writer");
  locks_.insert(path);
  if (!live_.count(path)) live_[path] = {std::make_shared<File>()};
  return std::unique_ptr<FileLock>(new FaultFileLock(this, path));
}

void FaultEnv::SetCrashAfter(std::uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  crash_at_ = n == 0 ? 0 : ops_ + n;
}

std::uint64_t FaultEnv::ops() const {
  std::lock_guard<std::mutex> l(mu_);
  return ops_;
}

bool FaultEnv::crashed() const {
  std::lock_guard<std::mutex> l(mu_);
  return crashed_;
}

void FaultEnv::Crash(Tear tear) {
  std::lock_guard<std::mutex> l(mu_);
  // Directory entries revert to their last synced form; files keep their synced bytes.
  std::map<std::string, Entry> after;
  for (const auto& [path, e] : durable_) {
    if (!e.file) {
      after[path] = e;
      continue;
    }
    auto f = std::make_shared<File>();
    const File& old = *e.file;
    f->data.assign(old.data.begin(), old.data.begin() + static_cast<std::ptrdiff_t>(old.synced));
    const std::uint64_t unsynced = old.data.size() - old.synced;
    if (unsynced > 0 && tear != Tear::kDropUnsynced) {
      const std::uint64_t keep = rng_() % (unsynced + 1);
      f->data.insert(f->data.end(), old.data.begin() + static_cast<std::ptrdiff_t>(old.synced),
                     old.data.begin() + static_cast<std::ptrdiff_t>(old.synced + keep));
      if (tear == Tear::kGarbleTail) {
        const std::uint64_t block_end =
            std::min<std::uint64_t>((f->data.size() / 512 + 1) * 512, old.data.size());
        while (f->data.size() < block_end) f->data.push_back(static_cast<std::uint8_t>(rng_()));
      }
    }
    f->synced = f->data.size();
    f->zeros_end = old.zeros_end;  // synced zeros where lost appends would have gone
    after[path] = {f};
  }
  live_ = after;
  durable_ = after;
  locks_.clear();  // the process that held them is gone
  crashed_ = false;
  crash_at_ = 0;
}

std::vector<std::uint8_t> FaultEnv::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = live_.find(path);
  if (it == live_.end() || !it->second.file) return {};
  return it->second.file->Physical();
}

void FaultEnv::SetContents(const std::string& path, std::vector<std::uint8_t> bytes) {
  std::lock_guard<std::mutex> l(mu_);
  auto f = std::make_shared<File>();
  f->data = std::move(bytes);
  f->synced = f->data.size();
  live_[path] = {f};
  durable_[path] = {f};
}

}  // namespace mmsb::testing
