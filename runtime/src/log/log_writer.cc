// LogBatch and LogWriter: framing, group commit, segment rotation, recovery at open.
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <random>

#include <fmt/format.h>

#include "mmsb/log.h"

#include "core/mutex.h"
#include "log/commit_info_frame.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/prewrite.h"
#include "log/record_reader.h"
#include "log/segments.h"

namespace mmsb {

using log::kRecordHeaderSize;

namespace {

// Buffers grown beyond this by one huge commit give their memory back once it is written.
constexpr std::size_t kKeptCapacity = std::size_t{64} << 20;

// A group at least this large is written from the caller's batch, not copied into the writer's
// buffer first (a large page's first image would otherwise be held twice more: docs/Runtime.md,
// "Memory").
constexpr std::size_t kDirectWriteBytes = std::size_t{16} << 20;

// Room past LogOptions::buffer_bytes in a buffered log's reserved buffer: the group that
// crosses buffer_bytes is appended before the buffer is handed over (a larger one grows it).
constexpr std::size_t kBufferSlack = std::size_t{64} << 10;

}  // namespace

// ---- LogBatch ----------------------------------------------------------------------------------

std::size_t LogBatch::Begin() {
  const std::size_t at = bytes_.size();
  bytes_.resize(at + kRecordHeaderSize);
  return at;
}

void LogBatch::Seal(std::size_t at, std::uint8_t type) {
  // The header hash H depends only on the log id and the record's shape (type, length), and the
  // commit-info record repeats its shape at every commit: a cache of recent shapes (keyed by log
  // id too, so one per thread serves every batch) frames it with one XXH3 call instead of two.
  thread_local log::HeaderHashCache header_hashes;
  const std::span<const std::uint8_t> payload(bytes_.data() + at + kRecordHeaderSize,
                                              bytes_.size() - at - kRecordHeaderSize);
  log::FillRecordHeader(bytes_.data() + at, log_id_, type, payload, header_hashes);
  if (type != static_cast<std::uint8_t>(LogRecordType::kEvent)) ++counted_;
}

void LogBatch::AddPageCreate(const LogPageCreate& rec) {
  const std::size_t at = Begin();
  log::EncodePageCreate(rec, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kPageCreate));
  page_id_high_ = std::max(page_id_high_, rec.id);
}

void LogBatch::AddTypeDescriptor(const TypeDescriptor& type) {
  const std::size_t at = Begin();
  log::EncodeTypeDescriptor(type, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kTypeDescriptor));
}

Status LogBatch::AddDelta(const Delta& delta) {
  const std::size_t at = Begin();
  EncodeDeltaTo(delta, bytes_);
  if (bytes_.size() - at - kRecordHeaderSize > log::kMaxRecordPayload) {
    bytes_.resize(at);
    return InvalidArgument(fmt::format(
        "delta of page {} encodes to more than 4 GiB - 1 bytes, the record limit", delta.page()));
  }
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kDelta));
  return Status::Ok();
}

void LogBatch::AddPageFree(PageId id) {
  const std::size_t at = Begin();
  log::EncodePageFree(id, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kPageFree));
}

void LogBatch::AddEdgeChange(const LogEdgeChange& change) {
  const std::size_t at = Begin();
  log::EncodeEdgeChange(change, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kGraphEdge));
}

void LogBatch::AddRecompute(const LogRecompute& rec) {
  const std::size_t at = Begin();
  log::EncodeRecompute(rec, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kRecompute));
}

void LogBatch::AddSite(const LogSite& site) {
  const std::size_t at = Begin();
  log::EncodeSite(site, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kSite));
}

void LogBatch::AddCommitInfoFor(const LogCommitTransaction& t) {
  // Written at every commit: framed from this thread's template (log/commit_info_frame.h), which
  // is keyed by the log id, so one serves every batch of the thread.
  thread_local log::CommitInfoFramer framer;
  AddCommitInfoFor(t, framer);
}

void LogBatch::AddCommitInfo(const LogCommitInfo& info) {
  if (info.state_hash == 0 && info.transactions.size() == 1) {
    AddCommitInfoFor(info.transactions[0]);
    return;
  }
  // Sized first, then encoded in place.
  const std::size_t at = bytes_.size();
  const std::size_t size = log::CommitInfoSize(info);
  bytes_.resize(at + kRecordHeaderSize + size);
  log::EncodeCommitInfoAt(info, bytes_.data() + at + kRecordHeaderSize);
  Seal(at, log::kCompactCommitInfoType);
}

void LogBatch::AddVerifyMiss(const LogVerifyMiss& miss) {
  const std::size_t at = Begin();
  log::EncodeVerifyMiss(miss, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kVerifyMiss));
}

void LogBatch::AddBuild(const LogBuild& build) {
  const std::size_t at = Begin();
  log::EncodeBuild(build, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kBuild));
}

void LogBatch::AddEvent(Epoch epoch, std::span<const std::uint8_t> bytes) {
  const std::size_t at = Begin();
  log::EncodeEvent(epoch, bytes, bytes_);
  Seal(at, static_cast<std::uint8_t>(LogRecordType::kEvent));
}

void LogBatch::AddRaw(std::uint8_t type, std::span<const std::uint8_t> payload) {
  if (type == static_cast<std::uint8_t>(LogRecordType::kPageCreate)) {
    // A copied page-create (a replica log) counts like AddPageCreate's.
    LogPageCreate rec;
    if (log::DecodePageCreate(payload, &rec).ok()) {
      page_id_high_ = std::max(page_id_high_, rec.id);
    }
  }
  const std::size_t at = Begin();
  bytes_.insert(bytes_.end(), payload.begin(), payload.end());
  Seal(at, type);
}

void LogBatch::Clear() {
  // The capacity is kept for the next batch, unless a huge commit (a large page's first image)
  // grew it: that memory goes back rather than stay resident for the life of the log.
  if (bytes_.capacity() > kKeptCapacity) {
    std::vector<std::uint8_t>().swap(bytes_);
  } else {
    bytes_.clear();
  }
  counted_ = 0;
  page_id_high_ = 0;
}

void LogBatch::set_log_id(std::uint64_t id) {
  if (id == log_id_) return;
  log_id_ = id;
  for (std::size_t at = 0; at + kRecordHeaderSize <= bytes_.size();) {
    const std::uint32_t len = log::Get32(bytes_.data() + at + 4);
    const std::uint8_t type = bytes_[at + 8];
    log::FillRecordHeader(bytes_.data() + at, log_id_, type,
                          {bytes_.data() + at + kRecordHeaderSize, len});
    at += kRecordHeaderSize + len;
  }
}

// ---- LogWriter ---------------------------------------------------------------------------------

class LogWriter::Impl {
 public:
  static constexpr std::uint64_t kPrewriteAhead = std::uint64_t{1} << 20;

  Env* env = nullptr;
  std::string dir;
  LogOptions opts;
  std::uint64_t log_id = 0;
  std::unique_ptr<FileLock> lock;

  Mutex mu;
  std::condition_variable cv;
  // Under Durability::kSync, held across append + write + fsync so each commit gets its own.
  std::mutex sync_mu;

  std::vector<std::uint8_t> buf GUARDED_BY(mu);    // appended, not yet handed to the OS
  std::vector<std::uint8_t> spare GUARDED_BY(mu);  // recycled buffer capacity
  std::uint64_t appended GUARDED_BY(mu) = 0;       // log positions: bytes appended since open
  std::uint64_t written GUARDED_BY(mu) = 0;
  std::uint64_t synced GUARDED_BY(mu) = 0;
  bool io_busy GUARDED_BY(mu) = false;  // one thread writes/syncs outside the lock
  bool rotating GUARDED_BY(mu) = false;
  bool closed GUARDED_BY(mu) = false;
  Status error GUARDED_BY(mu);         // sticky: after a failed write or fsync, nothing is trusted
  std::unique_ptr<WritableFile> file;  // used by the io_busy owner, or under mu when !io_busy
  // `file`'s zero-prewriting side, for durable logs whose Env's files have one (log/prewrite.h).
  log::ZeroPrewriter* prewriter = nullptr;
  std::uint64_t seq GUARDED_BY(mu) = 0;
  std::uint64_t segment_size GUARDED_BY(mu) = 0;  // bytes in the current segment incl. buffered
  Epoch last_epoch GUARDED_BY(mu) = 0;
  PageId page_id_high GUARDED_BY(mu) = 0;
  Counters counters GUARDED_BY(mu);
  std::vector<std::uint8_t> scratch GUARDED_BY(mu);
  log::HeaderHashCache header_hashes GUARDED_BY(mu);  // the commit records' (one shape)
  // Group commit sizing (see WaitForGroup).
  std::uint32_t grouped_commits GUARDED_BY(mu) =
      0;  // commits appended since a leader took the buffer
  std::uint32_t recent_group_max GUARDED_BY(mu) = 1;
  std::uint32_t groups_since_max GUARDED_BY(mu) = 0;
  std::uint64_t last_sync_ns GUARDED_BY(mu) = 0;
  bool leader_waiting GUARDED_BY(mu) = false;
  // Published copies for WaitSynced's lock-free check, stored under mu by ReleaseIo; `turns`
  // counts the I/O slot's turns and is what waiters sleep on.
  std::atomic<std::uint64_t> synced_pub{0};
  std::atomic<bool> failed{false};
  std::atomic<std::uint32_t> turns{0};

  bool durable() const { return opts.durability != Durability::kNone; }

  // Makes log positions up to `target` written (and synced when `sync`). `l` holds mu (through
  // its native mutex, which the analysis cannot follow). Releases it while doing I/O; whoever
  // finds the I/O slot free takes every buffered byte with it (group commit).
  Status FlushTo(std::unique_lock<std::mutex>& l, std::uint64_t target,
                 bool sync) NO_THREAD_SAFETY_ANALYSIS {
    for (;;) {
      if (!error.ok()) return error;
      if (written >= target && (!sync || synced >= target)) return Status::Ok();
      if (io_busy) {
        cv.wait(l);
        continue;
      }
      RunRound(l, sync);
    }
  }

  // Waits until log position `target` is synced, leading rounds while the I/O slot is free.
  // Waiting needs no lock: each waiter sleeps on `turns` and, woken by the end of a round, checks
  // the published synced position itself, so one round's end releases all its committers at once
  // (a condition variable would hand them the mutex one by one, a wakeup each).
  Status WaitSynced(std::uint64_t target) NO_THREAD_SAFETY_ANALYSIS {
    if (SyncedPast(target)) return Status::Ok();
    std::unique_lock<std::mutex> l(mu.native());
    for (;;) {
      if (!error.ok()) return error;
      if (synced >= target) return Status::Ok();
      if (!io_busy) {
        RunRound(l, true);
        continue;
      }
      const std::uint32_t seen = turns.load(std::memory_order_relaxed);
      l.unlock();
      turns.wait(seen, std::memory_order_acquire);
      if (SyncedPast(target)) return Status::Ok();
      l.lock();
    }
  }

  // Lock-free: a completed round synced `target`, and no write or fsync has failed.
  bool SyncedPast(std::uint64_t target) const {
    return synced_pub.load(std::memory_order_acquire) >= target &&
           !failed.load(std::memory_order_acquire);
  }

  // Ends a turn of the I/O slot: publishes the synced position and wakes every waiter.
  void ReleaseIo() REQUIRES(mu) {
    io_busy = false;
    synced_pub.store(synced, std::memory_order_release);
    failed.store(!error.ok(), std::memory_order_release);
    turns.fetch_add(1, std::memory_order_release);
    turns.notify_all();
    cv.notify_all();
  }

  // One round, by the thread that found the I/O slot free (`l` holds mu; released during I/O):
  // takes every buffered byte, writes it, and syncs it when `sync` (group commit).
  void RunRound(std::unique_lock<std::mutex>& l, bool sync) NO_THREAD_SAFETY_ANALYSIS {
    io_busy = true;
    if (sync && opts.durability == Durability::kGroup) WaitForGroup(l);
    std::vector<std::uint8_t> data;
    data.swap(buf);
    buf.swap(spare);
    const std::uint64_t end = appended;
    const std::uint32_t group = grouped_commits;
    grouped_commits = 0;
    l.unlock();
    Status s;
    // Durable logs write into zeros written ahead (log/prewrite.h), so a commit's
    // fdatasync journals no size change or block allocation: one metadata journal commit per
    // kPrewriteAhead bytes of log instead of one per fsync.
    if (prewriter != nullptr && !data.empty()) {
      s = prewriter->PrewriteZeros(std::max<std::uint64_t>(data.size(), kPrewriteAhead));
    }
    if (s.ok() && !data.empty()) s = file->Append(data);
    const auto t0 = std::chrono::steady_clock::now();
    if (s.ok() && sync) s = file->Sync();
    const auto sync_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    l.lock();
    if (s.ok()) {
      if (!data.empty()) ++counters.writes;
      written = end;
      if (sync) {
        synced = end;
        ++counters.syncs;
        last_sync_ns = static_cast<std::uint64_t>(sync_ns.count());
        NoteGroup(group);
      }
    } else {
      error = s.WithContext(fmt::format("log '{}'", dir));
    }
    data.clear();
    if (spare.capacity() < data.capacity() && data.capacity() <= kKeptCapacity) spare.swap(data);
    ReleaseIo();
  }

  // Group commit's leader, before it takes the buffer: when recent groups showed that several
  // committers are active, wait a little (up to a quarter of the last fsync, at most 500 us) for
  // as many commits as the largest recent group, so committers released by the previous fsync
  // join this one instead of starting a round of their own (PostgreSQL's commit_delay, made
  // adaptive). A lone committer never waits: its groups have one commit.
  void WaitForGroup(std::unique_lock<std::mutex>& l) NO_THREAD_SAFETY_ANALYSIS {
    if (recent_group_max <= 1 || grouped_commits >= recent_group_max || last_sync_ns == 0) return;
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::nanoseconds(std::min<std::uint64_t>(last_sync_ns / 4, 500000));
    leader_waiting = true;
    while (grouped_commits < recent_group_max && error.ok()) {
      if (cv.wait_until(l, deadline) == std::cv_status::timeout) break;
    }
    leader_waiting = false;
  }

  // Tracks the largest group among the recent ones (decays after 8 smaller groups).
  void NoteGroup(std::uint32_t group) REQUIRES(mu) {
    if (group >= recent_group_max) {
      recent_group_max = group;
      groups_since_max = 0;
    } else if (++groups_since_max >= 8) {
      recent_group_max = std::max<std::uint32_t>(group, 1);
      groups_since_max = 0;
    }
  }

  Status CreateSegment(Epoch base_epoch, PageId base_page_id) REQUIRES(mu) {
    const std::string path = JoinPath(dir, log::SegmentFileName(seq));
    auto f = env->NewWritableFile(path);
    if (!f.ok()) return f.status();
    log::FileHeader h;
    h.log_id = log_id;
    h.seq = seq;
    h.base_epoch = base_epoch;
    h.base_page_id = base_page_id;
    std::uint8_t hdr[log::kFileHeaderSize];
    log::EncodeFileHeader(h, hdr);
    MMSB_RETURN_IF_ERROR((*f)->Append(hdr));
    // The header and the directory entry are durable before any commit in the segment is.
    MMSB_RETURN_IF_ERROR((*f)->Sync());
    MMSB_RETURN_IF_ERROR(env->SyncDir(dir));
    file = std::move(*f);
    prewriter = durable() ? dynamic_cast<log::ZeroPrewriter*>(file.get()) : nullptr;
    segment_size = log::kFileHeaderSize;
    ++counters.segments;
    return Status::Ok();
  }

  // Starts a new segment once the current one is full. Called before a group is added, so an
  // epoch never spans two segments. `l` holds mu.
  Status MaybeRotate(std::unique_lock<std::mutex>& l) NO_THREAD_SAFETY_ANALYSIS {
    while (rotating) cv.wait(l);
    if (segment_size < opts.segment_bytes || segment_size <= log::kFileHeaderSize)
      return Status::Ok();
    rotating = true;
    // Sealed segments are always synced, under every policy: a later segment's header must never
    // reach the disk ahead of the epochs it says came before it.
    Status s = FlushTo(l, appended, true);
    while (s.ok() && io_busy) cv.wait(l);
    if (s.ok()) s = file->Close();
    if (s.ok()) {
      ++seq;
      s = CreateSegment(last_epoch, page_id_high);
    }
    if (!s.ok() && error.ok())
      error = s.WithContext(fmt::format("log '{}': starting a new segment", dir));
    rotating = false;
    cv.notify_all();
    return error;
  }

  Expected<CommitTicket> Append(const LogBatch& batch, Epoch epoch, std::uint64_t unix_nanos) {
    const LogBatch* b = &batch;
    LogBatch reframed;
    if (batch.log_id() != log_id) {
      reframed = batch;
      reframed.set_log_id(log_id);
      b = &reframed;
    }
    if (unix_nanos == 0) unix_nanos = env->NowUnixNanos();
    std::unique_lock<std::mutex> l(mu.native());
    return AppendLocked(l, *b, epoch, unix_nanos);
  }

  Expected<CommitTicket> AppendLocked(std::unique_lock<std::mutex>& l, const LogBatch& b,
                                      Epoch epoch,
                                      std::uint64_t unix_nanos) NO_THREAD_SAFETY_ANALYSIS {
    if (closed) return FailedPrecondition(fmt::format("log '{}' is closed", dir));
    if (!error.ok()) return error;
    MMSB_RETURN_IF_ERROR(MaybeRotate(l));
    const Epoch e = epoch == kNextEpoch ? last_epoch + 1 : epoch;
    if (e <= last_epoch || e == kNextEpoch) {
      return InvalidArgument(
          fmt::format("epoch {} does not follow the log's last epoch {}", e, last_epoch));
    }
    page_id_high = std::max(page_id_high, b.page_id_high());
    LogCommit c;
    c.epoch = e;
    c.unix_nanos = unix_nanos;
    c.record_count = b.record_count();
    c.page_id_high = page_id_high;
    scratch.clear();
    log::EncodeCommit(c, scratch);
    if (b.bytes().size() >= kDirectWriteBytes) return AppendDirect(l, b, c.epoch);
    const std::size_t before = buf.size();
    if (buf.capacity() == 0 && opts.durability == Durability::kNone) {
      // A buffered log fills this buffer to buffer_bytes before handing it to the OS: reserved
      // at that size once (it and `spare` then take turns), it is not grown by doubling, which
      // copied what it held at each step and touched every page of each step's new block, about
      // twice the buffer's size per buffer in every writer session. Untouched pages of the
      // reservation cost no memory.
      buf.reserve(std::min(opts.buffer_bytes + kBufferSlack, kKeptCapacity));
    }
    buf.insert(buf.end(), b.bytes().begin(), b.bytes().end());
    log::AppendRecord(buf, log_id, static_cast<std::uint8_t>(LogRecordType::kCommit), scratch,
                      header_hashes);
    const std::uint64_t added = buf.size() - before;
    appended += added;
    segment_size += added;
    last_epoch = e;
    ++counters.commits;
    counters.bytes += added;
    ++grouped_commits;
    if (leader_waiting) cv.notify_all();
    CommitTicket t{e, appended};
    if (opts.durability == Durability::kNone && buf.size() >= opts.buffer_bytes) {
      MMSB_RETURN_IF_ERROR(FlushTo(l, appended, false));
    }
    return t;
  }

  // AppendLocked for a large group (its commit record encoded in `scratch`): writes what is
  // buffered, then the batch's bytes straight from the caller's batch and the commit record,
  // holding the I/O slot so nothing is written between them. Log positions stay in order: the
  // group's are taken before the lock is released, and groups appended meanwhile are buffered
  // and written after it.
  Expected<CommitTicket> AppendDirect(std::unique_lock<std::mutex>& l, const LogBatch& b,
                                      Epoch e) NO_THREAD_SAFETY_ANALYSIS {
    for (;;) {
      if (!error.ok()) return error;
      if (io_busy || rotating) {
        cv.wait(l);
      } else if (written < appended) {
        MMSB_RETURN_IF_ERROR(FlushTo(l, appended, false));
      } else {
        break;
      }
    }
    if (e <= last_epoch) {
      return InvalidArgument(
          fmt::format("epoch {} does not follow the log's last epoch {}", e, last_epoch));
    }
    std::vector<std::uint8_t> commit;
    log::AppendRecord(commit, log_id, static_cast<std::uint8_t>(LogRecordType::kCommit), scratch);
    const std::uint64_t added = b.bytes().size() + commit.size();
    io_busy = true;
    appended += added;
    segment_size += added;
    last_epoch = e;
    ++counters.commits;
    counters.bytes += added;
    const std::uint64_t end = appended;
    l.unlock();
    Status s;
    if (prewriter != nullptr) {
      s = prewriter->PrewriteZeros(std::max<std::uint64_t>(added, kPrewriteAhead));
    }
    const std::span<const std::uint8_t> pieces[] = {b.bytes(), commit};
    if (s.ok()) s = file->AppendV(pieces);
    l.lock();
    if (s.ok()) {
      ++counters.writes;
      // Groups appended while this one was written are still buffered: they follow it.
      written = std::max(written, end);
    } else {
      error = s.WithContext(fmt::format("log '{}'", dir));
    }
    ReleaseIo();
    if (!s.ok()) return error;
    return CommitTicket{e, end};
  }
};

LogWriter::LogWriter(std::string dir, const LogOptions& options, std::unique_ptr<Impl> impl)
    : dir_(std::move(dir)), options_(options), impl_(std::move(impl)) {
  log_id_ = impl_->log_id;
}

LogWriter::~LogWriter() { (void)Close(); }

namespace {

std::uint64_t RandomLogId() {
  std::random_device rd;
  std::uint64_t v = (std::uint64_t{rd()} << 32) ^ rd();
  v ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  v ^= static_cast<std::uint64_t>(::getpid()) << 17;
  return XXH3_64bits(&v, sizeof v) | 1;  // never 0
}

}  // namespace

Expected<std::unique_ptr<LogWriter>> LogWriter::Open(const std::string& dir,
                                                     const LogOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->env = options.env ? options.env : Env::Default();
  impl->dir = dir;
  impl->opts = options;
  if (impl->opts.segment_bytes < 4096) impl->opts.segment_bytes = 4096;
  Env* env = impl->env;
  MMSB_RETURN_IF_ERROR(env->CreateDir(dir));
  auto lock = env->LockFile(JoinPath(dir, "LOCK"));
  if (!lock.ok())
    return lock.status().WithContext(fmt::format("opening log '{}' for writing", dir));
  impl->lock = std::move(*lock);

  auto listing = log::ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  // A checkpoint write that a crash interrupted left its temporary file; the writer owns the
  // directory now (it holds LOCK), so nobody else is writing one.
  MMSB_RETURN_IF_ERROR(log::RemoveTempFiles(env, dir, *listing));
  log::RecoveredTail tail;
  if (!listing->segments.empty()) {
    auto rec = log::RecoverTail(env, dir, *listing, options.recovery);
    if (!rec.ok()) return rec.status();
    tail = std::move(*rec);
  }
  std::unique_ptr<LogWriter> w;
  {
    MutexLock l(&impl->mu);
    impl->log_id = tail.found ? tail.log_id : RandomLogId();
    impl->seq = tail.found ? tail.last_seq + 1 : 1;
    impl->last_epoch = tail.last_epoch;
    impl->page_id_high = tail.page_id_high;
    MMSB_RETURN_IF_ERROR(impl->CreateSegment(tail.last_epoch, tail.page_id_high));
  }
  // The options first: the order in which arguments are evaluated is unspecified, and the last
  // one takes `impl` (it is by value).
  const LogOptions opts = impl->opts;
  w.reset(new LogWriter(dir, opts, std::move(impl)));
  w->recovery_problems_ = std::move(tail.problems);
  return w;
}

Expected<CommitTicket> LogWriter::Append(const LogBatch& batch, Epoch epoch,
                                         std::uint64_t unix_nanos) {
  return impl_->Append(batch, epoch, unix_nanos);
}

Status LogWriter::WaitDurable(const CommitTicket& ticket) {
  if (options_.durability == Durability::kNone) return Status::Ok();
  return impl_->WaitSynced(ticket.end);
}

Expected<Epoch> LogWriter::Commit(const LogBatch& batch, Epoch epoch, std::uint64_t unix_nanos) {
  if (options_.durability == Durability::kSync) {
    // One write and one fsync per commit: no other commit may join ours.
    std::lock_guard<std::mutex> serial(impl_->sync_mu);
    auto t = Append(batch, epoch, unix_nanos);
    if (!t.ok()) return t.status();
    MMSB_RETURN_IF_ERROR(WaitDurable(*t));
    return t->epoch;
  }
  auto t = Append(batch, epoch, unix_nanos);
  if (!t.ok()) return t.status();
  MMSB_RETURN_IF_ERROR(WaitDurable(*t));
  return t->epoch;
}

Status LogWriter::AppendEvent(Epoch epoch, std::span<const std::uint8_t> bytes) {
  if (bytes.size() + 8 > log::kMaxRecordPayload)
    return InvalidArgument("event larger than the record limit");
  std::unique_lock<std::mutex> l(impl_->mu.native());
  return [&]() NO_THREAD_SAFETY_ANALYSIS -> Status {
    if (impl_->closed) return FailedPrecondition(fmt::format("log '{}' is closed", dir_));
    if (!impl_->error.ok()) return impl_->error;
    MMSB_RETURN_IF_ERROR(impl_->MaybeRotate(l));
    impl_->scratch.clear();
    log::EncodeEvent(epoch, bytes, impl_->scratch);
    const std::size_t before = impl_->buf.size();
    log::AppendRecord(impl_->buf, log_id_, static_cast<std::uint8_t>(LogRecordType::kEvent),
                      impl_->scratch);
    const std::uint64_t added = impl_->buf.size() - before;
    impl_->appended += added;
    impl_->segment_size += added;
    impl_->counters.bytes += added;
    return Status::Ok();
  }();
}

Status LogWriter::Flush() {
  std::unique_lock<std::mutex> l(impl_->mu.native());
  return [&]() NO_THREAD_SAFETY_ANALYSIS { return impl_->FlushTo(l, impl_->appended, false); }();
}

Status LogWriter::Sync() {
  std::unique_lock<std::mutex> l(impl_->mu.native());
  return [&]() NO_THREAD_SAFETY_ANALYSIS { return impl_->FlushTo(l, impl_->appended, true); }();
}

Status LogWriter::Close() {
  if (!impl_) return Status::Ok();
  std::unique_lock<std::mutex> l(impl_->mu.native());
  return [&]() NO_THREAD_SAFETY_ANALYSIS -> Status {
    if (impl_->closed) return impl_->error;
    Status s = impl_->FlushTo(l, impl_->appended, impl_->durable());
    while (impl_->io_busy) impl_->cv.wait(l);
    impl_->closed = true;
    if (impl_->file) {
      Status c = impl_->file->Close();
      if (s.ok()) s = c;
      impl_->file.reset();
    }
    impl_->lock.reset();
    return s;
  }();
}

Status LogWriter::NoteCheckpoint(Epoch epoch, const std::string& file_name) {
  {
    std::unique_lock<std::mutex> l(impl_->mu.native());
    Status s = [&]() NO_THREAD_SAFETY_ANALYSIS -> Status {
      if (impl_->closed) return FailedPrecondition(fmt::format("log '{}' is closed", dir_));
      if (epoch > impl_->last_epoch) {
        return InvalidArgument(fmt::format("checkpoint epoch {} is after the log's last epoch {}",
                                           epoch, impl_->last_epoch));
      }
      MMSB_RETURN_IF_ERROR(impl_->MaybeRotate(l));
      impl_->scratch.clear();
      log::EncodeCheckpointMarker({epoch, file_name}, impl_->scratch);
      const std::size_t before = impl_->buf.size();
      log::AppendRecord(impl_->buf, log_id_,
                        static_cast<std::uint8_t>(LogRecordType::kCheckpointMarker),
                        impl_->scratch);
      const std::uint64_t added = impl_->buf.size() - before;
      impl_->appended += added;
      impl_->segment_size += added;
      impl_->counters.bytes += added;
      return impl_->FlushTo(l, impl_->appended, true);
    }();
    MMSB_RETURN_IF_ERROR(s);
  }
  if (!options_.retire_segments) return Status::Ok();
  std::uint64_t current_seq;
  {
    MutexLock l(&impl_->mu);
    current_seq = impl_->seq;
  }
  return log::RetireCovered(impl_->env, dir_, current_seq, options_.retention);
}

Epoch LogWriter::last_epoch() const {
  MutexLock l(&impl_->mu);
  return impl_->last_epoch;
}

PageId LogWriter::page_id_high() const {
  MutexLock l(&impl_->mu);
  return impl_->page_id_high;
}

LogWriter::Counters LogWriter::counters() const {
  MutexLock l(&impl_->mu);
  return impl_->counters;
}

}  // namespace mmsb
