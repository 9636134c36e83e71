#include "log/segments.h"

#include <algorithm>
#include <charconv>

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

Status RetireCovered(Env* env, const std::string& dir, std::uint64_t current_seq) {
  auto listing = ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  auto& ckpts = listing->checkpoints;
  if (ckpts.empty()) return Status::Ok();
  bool changed = false;
  while (ckpts.size() > 2) {
    MMSB_RETURN_IF_ERROR(env->RemoveFile(ckpts.front().path));
    ckpts.erase(ckpts.begin());
    changed = true;
  }
  const Epoch covered = ckpts.size() >= 2 ? ckpts[ckpts.size() - 2].epoch : ckpts.back().epoch;
  auto& segs = listing->segments;
  // A segment's epochs end where the next segment's begin: its header's base epoch.
  for (std::size_t i = 0; i + 1 < segs.size() && segs[i].seq < current_seq; ++i) {
    auto next = env->NewRandomAccessFile(segs[i + 1].path);
    if (!next.ok()) break;
    RecordReader rr(next->get(), segs[i + 1].path);
    FileHeader h;
    if (!rr.ReadHeader(&h).ok() || h.base_epoch > covered) break;
    MMSB_RETURN_IF_ERROR(env->RemoveFile(segs[i].path));
    changed = true;
  }
  if (changed) MMSB_RETURN_IF_ERROR(env->SyncDir(dir));
  return Status::Ok();
}

}  // namespace mmsb::log
