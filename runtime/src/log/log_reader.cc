// LogReader: segments in sequence, framing checks, typed decoding, problem reports.
#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "mmsb/log.h"

#include "log/log_format.h"
#include "log/log_records.h"
#include "log/memory_file_env.h"
#include "log/record_reader.h"
#include "log/segments.h"

namespace mmsb {

const char* LogRecordTypeName(LogRecordType t) {
  switch (t) {
    case LogRecordType::kPageCreate:
      return "page-create";
    case LogRecordType::kPageFree:
      return "page-free";
    case LogRecordType::kTypeDescriptor:
      return "type";
    case LogRecordType::kDelta:
      return "delta";
    case LogRecordType::kCommit:
      return "commit";
    case LogRecordType::kCheckpointMarker:
      return "checkpoint";
    case LogRecordType::kGraphEdge:
      return "edge";
    case LogRecordType::kEvent:
      return "event";
    case LogRecordType::kRunStart:
      return "run-start";
    case LogRecordType::kRecompute:
      return "recompute";
    case LogRecordType::kSite:
      return "site";
    case LogRecordType::kCommitInfo:
      return "commit-info";
    case LogRecordType::kBuild:
      return "build";
    case LogRecordType::kVerifyMiss:
      return "verify-miss";
    case LogRecordType::kPageImage:
      return "page-image";
    case LogRecordType::kCheckpointEnd:
      return "checkpoint-end";
  }
  return "unknown";
}

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kGroup:
      return "group";
    case Durability::kSync:
      return "sync";
  }
  return "unknown";
}

const char* LogProblemKindName(LogProblem::Kind k) {
  switch (k) {
    case LogProblem::Kind::kTornTail:
      return "torn tail";
    case LogProblem::Kind::kCorruption:
      return "corruption";
    case LogProblem::Kind::kBadSegment:
      return "bad segment";
    case LogProblem::Kind::kDroppedEpoch:
      return "dropped epoch";
    case LogProblem::Kind::kIncompleteEpoch:
      return "incomplete epoch";
    case LogProblem::Kind::kInconsistent:
      return "inconsistent";
  }
  return "unknown";
}

std::string LogProblem::ToString() const {
  std::string s = fmt::format("{}:{}: {}", file, offset, LogProblemKindName(kind));
  if (epoch != 0) s += fmt::format(" (epoch {})", epoch);
  if (!message.empty()) s += ": " + message;
  return s;
}

namespace {

bool KnownType(std::uint8_t t) { return t >= 1 && t <= 17; }

}  // namespace

class LogReader::Impl {
 public:
  LogReaderOptions opts;
  std::unique_ptr<Env> owned_env;  // OpenBuffer's image; outlives `file`
  Env* env = nullptr;
  bool directory = false;
  std::vector<std::string> files;
  std::vector<std::uint64_t> seqs;  // directory mode: sequence number from each file name
  std::uint64_t total = 0;
  std::uint64_t done = 0;  // bytes of finished files
  std::size_t idx = 0;
  // LogReaderOptions::retain_files: the files and read windows the reader has left, in the order
  // it left them (seq counts them all), until ReleaseRetained(). Before rr, which points at pool.
  struct Retained {
    std::uint64_t seq = 0;
    std::unique_ptr<RandomAccessFile> file;
    std::vector<std::uint8_t> window;
  };
  std::deque<Retained> retained;
  std::uint64_t retained_seq = 0;
  log::WindowPool pool;
  std::unique_ptr<RandomAccessFile> file;
  std::unique_ptr<log::RecordReader> rr;

  void CollectRetired() {
    for (auto& w : pool.retired) retained.push_back({retained_seq++, nullptr, std::move(w)});
    pool.retired.clear();
  }
  void ReleaseRetained(std::uint64_t mark) {
    while (!retained.empty() && retained.front().seq < mark) {
      // A window goes back to the pool for reuse (a few are enough: a group spans few).
      if (!retained.front().window.empty() && pool.spare.size() < 4)
        pool.spare.push_back(std::move(retained.front().window));
      retained.pop_front();
    }
  }
  std::vector<LogProblem> problems;
  std::uint64_t log_id = 0;
  bool have_log_id = false;
  bool in_checkpoint = false;
  Epoch last_commit = 0;
  Epoch first_base = 0;
  bool damage_in_previous = false;
  bool ended = false;

  Status Problem(LogProblem p, bool fatal_in_strict) {
    const bool fatal = fatal_in_strict && opts.mode == RecoveryMode::kStrict;
    Status s = fatal ? Status(StatusCode::kCorruption, p.ToString()) : Status::Ok();
    problems.push_back(std::move(p));
    if (fatal) ended = true;
    return s;
  }

  // Opens files[idx]. Returns OK with rr set, OK with rr unset (segment skipped), or an error.
  Status OpenCurrent() {
    const std::string& path = files[idx];
    const bool last = idx + 1 == files.size();
    // Sealed segments are never truncated, so they may be mapped; the last one may be cut by a
    // writer's recovery while we read it.
    auto f = directory && !last ? env->NewMappedFile(path) : env->NewRandomAccessFile(path);
    if (!f.ok()) return f.status();
    file = std::move(*f);
    rr = std::make_unique<log::RecordReader>(file.get(), path);
    if (opts.retain_files && !rr->mapped()) rr->RetainWindows(&pool);
    log::FileHeader h;
    if (Status hs = rr->ReadHeader(&h); !hs.ok()) {
      const std::uint64_t size = file->Size();
      rr.reset();
      file.reset();
      if (last && size <= log::kFileHeaderSize && hs.code() == StatusCode::kCorruption) {
        problems.push_back({LogProblem::Kind::kTornTail, path, 0, size, last_commit + 1,
                            "segment header incomplete (crash while creating it)"});
        return Status::Ok();
      }
      if (hs.IsUnsupported()) {
        ended = true;
        return hs;  // a newer format: not damage, and salvage cannot help
      }
      damage_in_previous = true;
      return Problem({LogProblem::Kind::kBadSegment, path, 0, size, last_commit + 1, hs.message()},
                     true);
    }
    if (!directory) {
      log_id = h.log_id;
      in_checkpoint = h.checkpoint;
      last_commit = h.checkpoint ? h.base_epoch : (h.base_epoch);
      first_base = h.base_epoch;
      return Status::Ok();
    }
    if (h.checkpoint) {
      rr.reset();
      return Problem(
          {LogProblem::Kind::kBadSegment, path, 0, 0, 0, "a checkpoint file named like a segment"},
          true);
    }
    if (have_log_id && h.log_id != log_id) {
      rr.reset();
      return Problem({LogProblem::Kind::kBadSegment, path, 16, 0, 0,
                      fmt::format("belongs to another log (log id {:016x}, expected {:016x})",
                                  h.log_id, log_id)},
                     true);
    }
    if (h.seq != seqs[idx]) {
      MMSB_RETURN_IF_ERROR(Problem(
          {LogProblem::Kind::kBadSegment, path, 24, 0, 0,
           fmt::format("header says segment {} but the file name says {}", h.seq, seqs[idx])},
          true));
    }
    if (!have_log_id) {
      have_log_id = true;
      log_id = h.log_id;
      last_commit = h.base_epoch;
      first_base = h.base_epoch;
    } else {
      if (idx > 0 && seqs[idx] != seqs[idx - 1] + 1) {
        MMSB_RETURN_IF_ERROR(
            Problem({LogProblem::Kind::kBadSegment, path, 0, 0, last_commit + 1,
                     fmt::format("segments {}..{} are missing", seqs[idx - 1] + 1, seqs[idx] - 1)},
                    true));
      }
      if (h.base_epoch < last_commit) {
        MMSB_RETURN_IF_ERROR(Problem(
            {LogProblem::Kind::kInconsistent, path, 32, 0, h.base_epoch,
             fmt::format("segment starts after epoch {}, but the log already reached epoch {}",
                         h.base_epoch, last_commit)},
            true));
      } else if (h.base_epoch > last_commit && !damage_in_previous) {
        MMSB_RETURN_IF_ERROR(Problem({LogProblem::Kind::kBadSegment, path, 32, 0, last_commit + 1,
                                      fmt::format("epochs {}..{} are missing before this segment",
                                                  last_commit + 1, h.base_epoch)},
                                     true));
      }
      last_commit = std::max(last_commit, h.base_epoch);
    }
    damage_in_previous = false;
    return Status::Ok();
  }

  // Decodes rec into *e. Returns a Corruption message for a record whose frame is valid but whose
  // payload is not.
  Status Decode(const log::RecordReader::Record& rec, LogEntry* e) {
    e->raw_type = rec.type;
    e->type = static_cast<LogRecordType>(rec.type);
    e->file_index = idx;
    e->offset = rec.offset;
    e->framed_size = log::kRecordHeaderSize + rec.payload.size();
    e->payload = rec.payload;
    e->payload_mapped = rr->mapped() || opts.retain_files;
    e->epoch = in_checkpoint ? last_commit : last_commit + 1;
    if (!KnownType(rec.type)) return Status::Ok();
    if (rec.type == log::kCompactCommitInfoType) {
      e->type = LogRecordType::kCommitInfo;  // one entry type for both layouts
      return log::DecodeCommitInfo(rec.payload, &e->commit_info);
    }
    switch (e->type) {
      case LogRecordType::kPageCreate: {
        MMSB_RETURN_IF_ERROR(log::DecodePageCreate(rec.payload, &e->page_create));
        if (e->page_create.size > opts.max_page_bytes) {
          return Corruption(
              fmt::format("page-create record: page {} claims {} bytes, more than the limit {}",
                          e->page_create.id, e->page_create.size, opts.max_page_bytes));
        }
        return Status::Ok();
      }
      case LogRecordType::kPageFree:
        return log::DecodePageFree(rec.payload, &e->page_free);
      case LogRecordType::kTypeDescriptor:
        return log::DecodeTypeDescriptor(rec.payload, &e->type_descriptor);
      case LogRecordType::kDelta: {
        if (!opts.decode_deltas) return Status::Ok();
        std::size_t consumed = 0;
        const auto limit =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(opts.max_page_bytes, 0xFFFFFFFFu));
        auto d = DecodeDelta(rec.payload, &consumed, limit);
        if (!d.ok()) return Corruption("delta record: " + d.status().ToString());
        if (consumed != rec.payload.size()) {
          return Corruption(fmt::format("delta record: {} trailing bytes after the encoded delta",
                                        rec.payload.size() - consumed));
        }
        e->delta = std::move(*d);
        return Status::Ok();
      }
      case LogRecordType::kCommit: {
        MMSB_RETURN_IF_ERROR(log::DecodeCommit(rec.payload, &e->commit));
        if (e->commit.epoch <= last_commit) {
          return Corruption(fmt::format("commit record: epoch {} does not follow epoch {}",
                                        e->commit.epoch, last_commit));
        }
        e->epoch = e->commit.epoch;
        last_commit = e->commit.epoch;
        return Status::Ok();
      }
      case LogRecordType::kCheckpointMarker:
        MMSB_RETURN_IF_ERROR(log::DecodeCheckpointMarker(rec.payload, &e->checkpoint));
        e->epoch = e->checkpoint.epoch;
        return Status::Ok();
      case LogRecordType::kGraphEdge:
        return log::DecodeEdgeChange(rec.payload, &e->edge);
      case LogRecordType::kEvent:
        MMSB_RETURN_IF_ERROR(log::DecodeEvent(rec.payload, &e->epoch, &e->event));
        return Status::Ok();
      case LogRecordType::kRunStart:
        return log::DecodeRunStart(rec.payload, &e->run_start);
      case LogRecordType::kRecompute:
        return log::DecodeRecompute(rec.payload, &e->recompute);
      case LogRecordType::kSite:
        return log::DecodeSite(rec.payload, &e->site);
      case LogRecordType::kCommitInfo:
        return log::DecodeFixedCommitInfo(rec.payload, &e->commit_info);
      case LogRecordType::kBuild:
        return log::DecodeBuild(rec.payload, &e->build);
      case LogRecordType::kVerifyMiss:
        return log::DecodeVerifyMiss(rec.payload, &e->verify_miss);
      case LogRecordType::kPageImage:
        return log::DecodePageImageChunk(rec.payload, &e->image);
      case LogRecordType::kCheckpointEnd:
        return log::DecodeCheckpointEnd(rec.payload, &e->checkpoint_end);
    }
    return Status::Ok();
  }

  Expected<bool> Next(LogEntry* e) {
    for (;;) {
      if (ended) return false;
      if (!rr) {
        if (idx >= files.size()) {
          ended = true;
          return false;
        }
        Status s = OpenCurrent();
        if (!s.ok()) return s;
        if (!rr) {
          done += file ? file->Size() : 0;
          file.reset();
          ++idx;
        }
        continue;
      }
      log::RecordReader::Record rec;
      log::RecordReader::Damage dmg;
      Status io;
      const auto result = rr->Next(&rec, &dmg, &io);
      if (!pool.retired.empty()) CollectRetired();
      switch (result) {
        case log::RecordReader::Result::kEnd:
          done += rr->file_size();
          // Spans into a file that records came from stay valid while it is retained.
          if (opts.retain_files) {
            rr->RetireWindow();
            CollectRetired();
            rr.reset();
            retained.push_back({retained_seq++, std::move(file), {}});
          } else {
            rr.reset();
            file.reset();
          }
          ++idx;
          continue;
        case log::RecordReader::Result::kError:
          ended = true;
          return io;
        case log::RecordReader::Result::kDamage: {
          const bool last = idx + 1 == files.size();
          if (dmg.torn_tail && last) {
            problems.push_back(
                {LogProblem::Kind::kTornTail, files[idx], dmg.offset, dmg.length, last_commit + 1,
                 fmt::format("{} bytes at the end are an incomplete record", dmg.length)});
            continue;
          }
          damage_in_previous = true;
          std::string m = dmg.torn_tail
                              ? fmt::format(
                                    "segment ends in {} bytes that are not a valid record, and "
                                    "later segments follow",
                                    dmg.length)
                              : fmt::format("{} bytes are not a valid record", dmg.length);
          MMSB_RETURN_IF_ERROR(Problem({LogProblem::Kind::kCorruption, files[idx], dmg.offset,
                                        dmg.length, last_commit + 1, std::move(m)},
                                       true));
          continue;
        }
        case log::RecordReader::Result::kRecord: {
          if (Status s = Decode(rec, e); !s.ok()) {
            damage_in_previous = true;
            MMSB_RETURN_IF_ERROR(
                Problem({LogProblem::Kind::kCorruption, files[idx], rec.offset,
                         log::kRecordHeaderSize + rec.payload.size(), e->epoch,
                         "checksums match but the payload does not decode: " + s.message()},
                        true));
            continue;
          }
          return true;
        }
      }
    }
  }
};

LogReader::LogReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LogReader::~LogReader() = default;

Expected<std::unique_ptr<LogReader>> LogReader::Open(const std::string& path,
                                                     const LogReaderOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->env = options.env ? options.env : Env::Default();
  Env* env = impl->env;
  MMSB_RETURN_IF_ERROR(CheckLogPath(path, env));
  if (env->IsDirectory(path)) {
    impl->directory = true;
    auto listing = log::ListLogDir(env, path);
    if (!listing.ok()) return listing.status();
    const auto& segs = listing->segments;
    std::size_t first = 0;
    if (options.skip_through_epoch > 0) {
      // Segment i holds epochs up to the next segment's base epoch.
      while (first + 1 < segs.size()) {
        auto f = env->NewRandomAccessFile(segs[first + 1].path);
        if (!f.ok()) break;
        log::RecordReader rr(f->get(), segs[first + 1].path);
        log::FileHeader h;
        if (!rr.ReadHeader(&h).ok() || h.base_epoch > options.skip_through_epoch) break;
        ++first;
      }
    }
    for (std::size_t i = first; i < segs.size(); ++i) {
      impl->files.push_back(segs[i].path);
      impl->seqs.push_back(segs[i].seq);
    }
  } else {
    if (!env->FileExists(path)) return NotFound(fmt::format("no log at '{}'", path));
    impl->files.push_back(path);
    impl->seqs.push_back(0);
  }
  for (const std::string& f : impl->files) {
    auto size = env->GetFileSize(f);
    if (size.ok()) impl->total += *size;
  }
  return std::unique_ptr<LogReader>(new LogReader(std::move(impl)));
}

Expected<std::unique_ptr<LogReader>> LogReader::OpenBuffer(std::span<const std::uint8_t> records,
                                                           std::uint64_t log_id, Epoch base_epoch,
                                                           const LogReaderOptions& options) {
  log::FileHeader h;
  h.log_id = log_id;
  h.base_epoch = base_epoch;
  std::vector<std::uint8_t> image(log::kFileHeaderSize + records.size());
  log::EncodeFileHeader(h, image.data());
  if (!records.empty()) {
    std::memcpy(image.data() + log::kFileHeaderSize, records.data(), records.size());
  }
  auto env = std::make_unique<log::MemoryFileEnv>(fmt::format("<epoch group after {}>", base_epoch),
                                                  std::move(image));
  LogReaderOptions o = options;
  o.env = env.get();
  auto r = Open(env->name(), o);
  if (!r.ok()) return r.status();
  (*r)->impl_->owned_env = std::move(env);
  return r;
}

Expected<bool> LogReader::Next(LogEntry* entry) { return impl_->Next(entry); }
const std::vector<std::string>& LogReader::files() const { return impl_->files; }
const std::vector<LogProblem>& LogReader::problems() const { return impl_->problems; }
std::uint64_t LogReader::log_id() const { return impl_->log_id; }
std::uint64_t LogReader::total_bytes() const { return impl_->total; }
Epoch LogReader::first_base_epoch() const { return impl_->first_base; }
std::uint64_t LogReader::RetainMark() const { return impl_->retained_seq; }
void LogReader::ReleaseRetained(std::uint64_t mark) { impl_->ReleaseRetained(mark); }
std::uint64_t LogReader::bytes_read() const {
  return impl_->done + (impl_->rr ? impl_->rr->position() : 0);
}

}  // namespace mmsb
