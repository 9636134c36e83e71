#include "log/segments.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "log/log_format.h"
#include "log/log_records.h"
#include "log/record_reader.h"

namespace mmsb::log {
namespace {

bool ParseDigits(std::string_view s, std::uint64_t* v) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string SegmentFileName(std::uint64_t seq) { return fmt::format("{:08d}.seg", seq); }

bool ParseSegmentFileName(std::string_view name, std::uint64_t* seq) {
  if (!EndsWith(name, ".seg") || name.size() < 12) return false;
  return ParseDigits(name.substr(0, name.size() - 4), seq) && *seq > 0;
}

std::string CheckpointFileName(Epoch epoch) { return fmt::format("ckpt-{:020d}.ckpt", epoch); }

bool ParseCheckpointFileName(std::string_view name, Epoch* epoch) {
  if (name.substr(0, 5) != "ckpt-" || !EndsWith(name, ".ckpt")) return false;
  return ParseDigits(name.substr(5, name.size() - 10), epoch);
}

Expected<LogDirListing> ListLogDir(Env* env, const std::string& dir) {
  auto children = env->GetChildren(dir);
  if (!children.ok()) return children.status();
  LogDirListing out;
  for (const std::string& name : *children) {
    std::uint64_t v = 0;
    if (ParseSegmentFileName(name, &v)) {
      out.segments.push_back({v, JoinPath(dir, name)});
    } else if (ParseCheckpointFileName(name, &v)) {
      out.checkpoints.push_back({v, JoinPath(dir, name)});
    } else if (name.substr(0, 5) == "ckpt-" && EndsWith(name, ".tmp")) {
      out.temp_files.push_back(JoinPath(dir, name));
    } else if (name == "LOCK") {
      out.has_lock = true;
    }
  }
  std::sort(out.segments.begin(), out.segments.end(),
            [](auto& a, auto& b) { return a.seq < b.seq; });
  std::sort(out.checkpoints.begin(), out.checkpoints.end(),
            [](auto& a, auto& b) { return a.epoch < b.epoch; });
  return out;
}

Expected<RecoveredTail> RecoverTail(Env* env, const std::string& dir, const LogDirListing& listing,
                                    RecoveryMode mode) {
  RecoveredTail out;
  if (listing.segments.empty()) return out;
  out.last_seq = listing.segments.back().seq;
  for (std::size_t i = listing.segments.size(); i-- > 0;) {
    const std::string& path = listing.segments[i].path;
    const bool last = i + 1 == listing.segments.size();
    auto file = env->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    RecordReader rr(file->get(), path);
    FileHeader h;
    if (Status hs = rr.ReadHeader(&h); !hs.ok()) {
      const std::uint64_t size = (*file)->Size();
      if (last && size <= kFileHeaderSize && hs.code() == StatusCode::kCorruption) {
        // Created, but the header never reached the disk completely: nothing was committed in it.
        file->reset();
        MMSB_RETURN_IF_ERROR(env->RemoveFile(path));
        MMSB_RETURN_IF_ERROR(env->SyncDir(dir));
        out.problems.push_back(
            {LogProblem::Kind::kTornTail, path, 0, size, 0,
             "segment header incomplete (crash while creating it); segment removed"});
        out.last_seq = listing.segments[i].seq - 1;
        continue;
      }
      if (mode == RecoveryMode::kStrict) {
        return Status(hs.code(),
                      hs.message() + " (open with RecoveryMode::kSalvage to continue past it)");
      }
      out.problems.push_back({LogProblem::Kind::kBadSegment, path, 0, size, 0, hs.message()});
      continue;
    }
    out.found = true;
    out.log_id = h.log_id;
    out.last_epoch = h.base_epoch;
    out.page_id_high = h.base_page_id;
    // The end of the last complete epoch (or of a standalone record after it): the cut point.
    std::uint64_t boundary = rr.position();
    bool pending = false;
    for (;;) {
      RecordReader::Record rec;
      RecordReader::Damage dmg;
      Status io;
      const auto r = rr.Next(&rec, &dmg, &io);
      if (r == RecordReader::Result::kEnd) break;
      if (r == RecordReader::Result::kError) return io;
      if (r == RecordReader::Result::kDamage) {
        if (dmg.torn_tail) {
          out.problems.push_back({LogProblem::Kind::kTornTail, path, dmg.offset, dmg.length,
                                  out.last_epoch + 1,
                                  fmt::format("torn tail of {} bytes cut", dmg.length)});
          break;
        }
        LogProblem p{LogProblem::Kind::kCorruption,
                     path,
                     dmg.offset,
                     dmg.length,
                     out.last_epoch + 1,
                     fmt::format("{} bytes are not a valid record", dmg.length)};
        if (mode == RecoveryMode::kStrict) {
          return Corruption(p.ToString() +
                            " (open with RecoveryMode::kSalvage to continue past it)");
        }
        out.problems.push_back(std::move(p));
        pending = true;  // the damage may have held records of the next epoch
        continue;
      }
      const std::uint64_t end = rec.offset + kRecordHeaderSize + rec.payload.size();
      const auto type = static_cast<LogRecordType>(rec.type);
      if (type == LogRecordType::kCommit) {
        LogCommit c;
        if (Status s = DecodeCommit(rec.payload, &c); !s.ok()) {
          LogProblem p{LogProblem::Kind::kCorruption,
                       path,
                       rec.offset,
                       end - rec.offset,
                       out.last_epoch + 1,
                       s.message()};
          if (mode == RecoveryMode::kStrict) return Corruption(p.ToString());
          out.problems.push_back(std::move(p));
          continue;
        }
        out.last_epoch = std::max(out.last_epoch, c.epoch);
        out.page_id_high = std::max(out.page_id_high, c.page_id_high);
        boundary = end;
        pending = false;
      } else if (type == LogRecordType::kEvent || type == LogRecordType::kCheckpointMarker) {
        Epoch e = ~Epoch{0};
        std::span<const std::uint8_t> bytes;
        LogCheckpointMarker m;
        if (type == LogRecordType::kEvent && DecodeEvent(rec.payload, &e, &bytes).ok()) {
        } else if (type == LogRecordType::kCheckpointMarker &&
                   DecodeCheckpointMarker(rec.payload, &m).ok()) {
          e = m.epoch;
        }
        if (!pending && e <= out.last_epoch) boundary = end;
      } else {
        pending = true;
      }
    }
    const std::uint64_t size = (*file)->Size();
    // A zero tail right after the last complete epoch is the space a durable writer wrote ahead
    // (log/prewrite.h) and never used: cut without a problem, nothing was lost.
    const bool only_zeros = rr.zero_tail() > 0 && size - rr.zero_tail() == boundary;
    file->reset();
    if (size > boundary) {
      if (only_zeros) {
        // no problem to report
      } else if (out.problems.empty() || out.problems.back().kind != LogProblem::Kind::kTornTail ||
                 out.problems.back().offset != boundary) {
        out.problems.push_back(
            {LogProblem::Kind::kIncompleteEpoch, path, boundary, size - boundary,
             out.last_epoch + 1,
             fmt::format("{} bytes after the last complete epoch cut", size - boundary)});
      }
      MMSB_RETURN_IF_ERROR(env->TruncateFile(path, boundary));
    }
    return out;
  }
  return out;
}

// The wall-clock time recorded in a checkpoint's end record (its last record, fixed size), read
// from the file's tail without reading the page images. 0 when it cannot be read.
std::uint64_t CheckpointUnixNanos(Env* env, const std::string& path) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return 0;
  RecordReader rr(file->get(), path);
  FileHeader h;
  if (!rr.ReadHeader(&h).ok()) return 0;
  std::vector<std::uint8_t> probe;
  EncodeCheckpointEnd({}, probe);
  const std::size_t tail = kRecordHeaderSize + probe.size();
  const std::uint64_t size = (*file)->Size();
  if (size < h.header_size + tail) return 0;
  std::vector<std::uint8_t> buf(tail);
  std::size_t got = 0;
  if (!(*file)->Read(size - tail, tail, buf.data(), &got).ok() || got != tail) return 0;
  RecordHeader rh;
  if (!ParseRecordHeader(buf.data(), rr.log_id(), &rh) ||
      rh.type != static_cast<std::uint8_t>(LogRecordType::kCheckpointEnd) ||
      rh.length != probe.size())
    return 0;
  const std::span<const std::uint8_t> payload(buf.data() + kRecordHeaderSize, probe.size());
  LogCheckpointEnd end;
  if (!PayloadMatches(rh, payload) || !DecodeCheckpointEnd(payload, &end).ok()) return 0;
  return end.unix_nanos;
}

Status RetireCovered(Env* env, const std::string& dir, std::uint64_t current_seq,
                     const RetentionPolicy& policy, CompactReport* report) {
  auto listing = ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  CompactReport rep;
  auto size_of = [&](const std::string& path) {
    auto n = env->GetFileSize(path);
    return n.ok() ? *n : 0;
  };
  auto& ckpts = listing->checkpoints;
  auto& segs = listing->segments;
  std::vector<std::uint64_t> seg_bytes, ckpt_bytes;
  for (const auto& sg : segs) seg_bytes.push_back(size_of(sg.path));
  for (const auto& c : ckpts) ckpt_bytes.push_back(size_of(c.path));
  for (auto n : seg_bytes) rep.bytes_before += n;
  for (auto n : ckpt_bytes) rep.bytes_before += n;
  rep.bytes_after = rep.bytes_before;
  if (ckpts.empty()) {
    if (report) *report = rep;
    return Status::Ok();
  }
  // A segment's epochs end where the next segment's begin: its header's base epoch. Segment i
  // may go once the oldest kept checkpoint is at or after base(i + 1). The writer's current
  // segment and the last one always stay.
  std::vector<Epoch> next_base;
  for (std::size_t i = 0; i + 1 < segs.size() && segs[i].seq < current_seq; ++i) {
    auto next = env->NewRandomAccessFile(segs[i + 1].path);
    if (!next.ok()) break;
    RecordReader rr(next->get(), segs[i + 1].path);
    FileHeader h;
    if (!rr.ReadHeader(&h).ok()) break;
    next_base.push_back(h.base_epoch);
  }
  auto removable_segments = [&](Epoch covered) {
    std::size_t n = 0;
    while (n < next_base.size() && next_base[n] <= covered) ++n;
    return n;
  };
  auto bytes_if_kept = [&](std::size_t keep) {
    std::uint64_t total = 0;
    const std::size_t first = ckpts.size() - keep;
    for (std::size_t i = first; i < ckpts.size(); ++i) total += ckpt_bytes[i];
    for (std::size_t i = removable_segments(ckpts[first].epoch); i < segs.size(); ++i)
      total += seg_bytes[i];
    return total;
  };
  std::size_t keep = std::max<std::size_t>(1, std::min(policy.keep_checkpoints, ckpts.size()));
  while (policy.max_bytes > 0 && keep > 1 && bytes_if_kept(keep) > policy.max_bytes) --keep;
  if (policy.max_age.count() > 0) {
    const std::uint64_t now = env->NowUnixNanos();
    const auto max_age_s = static_cast<std::uint64_t>(policy.max_age.count());
    while (keep > 1) {
      const std::uint64_t taken = CheckpointUnixNanos(env, ckpts[ckpts.size() - keep].path);
      if (taken == 0 || taken >= now || (now - taken) / 1'000'000'000u <= max_age_s) break;
      --keep;
    }
  }
  const std::size_t first_kept = ckpts.size() - keep;
  const Epoch covered = ckpts[first_kept].epoch;
  rep.oldest_checkpoint = covered;
  // Segments first, then checkpoints: after a crash between the two, every remaining segment
  // still follows a remaining checkpoint (each removed segment ends at or before `covered`).
  bool changed = false;
  const std::size_t drop = removable_segments(covered);
  for (std::size_t i = 0; i < drop; ++i) {
    MMSB_RETURN_IF_ERROR(env->RemoveFile(segs[i].path));
    rep.segments_removed++;
    rep.bytes_after -= seg_bytes[i];
    changed = true;
  }
  for (std::size_t i = 0; i < first_kept; ++i) {
    MMSB_RETURN_IF_ERROR(env->RemoveFile(ckpts[i].path));
    rep.checkpoints_removed++;
    rep.bytes_after -= ckpt_bytes[i];
    changed = true;
  }
  if (changed) MMSB_RETURN_IF_ERROR(env->SyncDir(dir));
  if (report) *report = rep;
  return Status::Ok();
}

Status RemoveTempFiles(Env* env, const std::string& dir, const LogDirListing& listing) {
  if (listing.temp_files.empty()) return Status::Ok();
  for (const std::string& path : listing.temp_files) {
    if (Status s = env->RemoveFile(path); !s.ok() && env->FileExists(path)) return s;
  }
  return env->SyncDir(dir);
}

namespace {

// What a file that is not an MMSB log seems to be, from its first bytes.
std::string DescribeForeign(std::span<const std::uint8_t> head) {
  auto starts = [&](std::string_view magic) {
    return head.size() >= magic.size() && std::memcmp(head.data(), magic.data(), magic.size()) == 0;
  };
  if (starts("\x7f"
             "ELF"))
    return "an ELF binary";
  if (starts(std::string_view("SQLite format 3\0", 16))) return "an SQLite database";
  if (starts("\x1f\x8b")) return "gzip data";
  if (starts("\x28\xb5\x2f\xfd")) return "zstd data";
  if (starts("PK\x03\x04")) return "a zip archive";
  if (starts("MMSB")) return "an MMSB file of an unknown kind";
  const bool text = std::all_of(head.begin(), head.end(), [](std::uint8_t c) {
    return c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80;
  });
  return text ? "a text file" : "unrecognised data";
}

}  // namespace

}  // namespace mmsb::log

namespace mmsb {

Expected<CompactReport> CompactLog(const std::string& dir, const RetentionPolicy& policy,
                                   Env* env) {
  if (env == nullptr) env = Env::Default();
  MMSB_RETURN_IF_ERROR(CheckLogPath(dir, env));
  if (!env->IsDirectory(dir))
    return InvalidArgument(fmt::format("'{}' is a file; compaction works on a log directory", dir));
  // The writer's lock: no writer appends, checkpoints or retires while this runs.
  auto lock = env->LockFile(JoinPath(dir, "LOCK"));
  if (!lock.ok()) return lock.status().WithContext(fmt::format("compacting log '{}'", dir));
  auto listing = log::ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  MMSB_RETURN_IF_ERROR(log::RemoveTempFiles(env, dir, *listing));
  if (listing->checkpoints.empty()) {
    return FailedPrecondition(fmt::format(
        "log '{}' has no checkpoint: compaction keeps the epochs after a checkpoint, and without "
        "one every segment is needed",
        dir));
  }
  CompactReport rep;
  const std::uint64_t past_last = listing->segments.empty() ? 1 : listing->segments.back().seq + 1;
  MMSB_RETURN_IF_ERROR(log::RetireCovered(env, dir, past_last, policy, &rep));
  return rep;
}

Status CheckLogPath(const std::string& path, Env* env) {
  if (env == nullptr) env = Env::Default();
  constexpr const char* kWhat =
      "an MMSB log is a directory of NNNNNNNN.seg segments, or one segment or checkpoint file";
  if (env->IsDirectory(path)) {
    auto listing = log::ListLogDir(env, path);
    if (!listing.ok()) return listing.status();
    if (listing->segments.empty() && listing->checkpoints.empty() && !listing->has_lock) {
      return InvalidArgument(fmt::format(
          "'{}' is a directory but not an MMSB log: no segment, checkpoint or LOCK file in it ({})",
          path, kWhat));
    }
    return Status::Ok();
  }
  if (!env->FileExists(path)) return NotFound(fmt::format("no log at '{}'", path));
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  const std::uint64_t size = (*file)->Size();
  if (size == 0) {
    return InvalidArgument(fmt::format("'{}' is an empty file, not an MMSB log ({})", path, kWhat));
  }
  std::vector<std::uint8_t> head(
      static_cast<std::size_t>(std::min<std::uint64_t>(size, log::kMaxFileHeaderSize)));
  std::size_t n = 0;
  MMSB_RETURN_IF_ERROR((*file)->Read(0, head.size(), head.data(), &n));
  const std::span<const std::uint8_t> got(head.data(), n);
  const bool magic = got.size() >= 8 && (std::memcmp(got.data(), log::kSegmentMagic, 8) == 0 ||
                                         std::memcmp(got.data(), log::kCheckpointMagic, 8) == 0);
  if (!magic) {
    return InvalidArgument(fmt::format(
        "'{}' is not an MMSB log: it looks like {} ({})", path,
        log::DescribeForeign(got.first(std::min<std::size_t>(got.size(), 512))), kWhat));
  }
  log::FileHeader h;
  if (Status s = log::DecodeFileHeader(got, path, &h); !s.ok()) {
    // Salvage skips damaged records, never a damaged file header: say so instead of suggesting it.
    return Status(s.code(), s.message() +
                                " (the file header is damaged; --salvage cannot read "
                                "a file without its header)");
  }
  return Status::Ok();
}

}  // namespace mmsb
