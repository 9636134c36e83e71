// Slice: a self-contained log of a window of epochs.
//
// The state at `from` comes from the newest checkpoint at or before it plus the epochs after it
// (Replay), and is written as the new log's checkpoint. The groups of epochs from + 1 .. to are
// then copied record by record (the same payloads, reframed under the new log's id), each
// committed with its original epoch and time, so replaying the slice to any epoch of the window
// applies exactly the records the original applies from the same state.
#include <random>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"
#include "mmsb/query.h"

#include "log/log_format.h"
#include "log/log_records.h"
#include "log/segments.h"

namespace mmsb::query {

Expected<SliceReport> Slice(const std::string& log_dir, Epoch from, Epoch to,
                            const std::string& out_dir) {
  if (from > to) return InvalidArgument(fmt::format("--from {} is after --to {}", from, to));
  Env* env = Env::Default();
  if (env->FileExists(out_dir)) {
    auto kids = env->GetChildren(out_dir);
    if (!kids.ok()) return kids.status();
    if (!kids->empty()) {
      return FailedPrecondition(
          fmt::format("'{}' exists and is not empty; a slice goes into a new directory", out_dir));
    }
  }
  {
    auto index = LogIndex::Open(log_dir);
    if (!index.ok()) return index.status();
    if ((*index)->last_epoch() < to) {
      return NotFound(
          fmt::format("epoch {} is beyond the end of log '{}' (last committed epoch {})", to,
                      log_dir, (*index)->last_epoch()));
    }
  }
  ReplayOptions ro;
  ro.epoch = from;
  auto state = Replay(log_dir, ro);
  if (!state.ok()) return state.status();
  // One segment whose header starts at `from` (readers number a group's records from the
  // segment's base epoch), the records copied under a new log id, each commit as it was.
  MMSB_RETURN_IF_ERROR(env->CreateDir(out_dir));
  std::uint64_t log_id = 0;
  {
    std::random_device rd;
    while (log_id == 0) log_id = (std::uint64_t{rd()} << 32) | rd();
  }
  SliceReport out;
  out.from = from;
  out.to = to;
  out.checkpoint = out_dir + "/" + log::CheckpointFileName(from);
  CheckpointOptions co;
  co.sync = true;
  auto ck = WriteCheckpointFile(out.checkpoint, ContentsOf(*state, log_id), co);
  if (!ck.ok()) return ck.status();
  out.bytes += *ck;

  log::FileHeader fh;
  fh.log_id = log_id;
  fh.seq = 1;
  fh.base_epoch = from;
  fh.base_page_id = state->page_id_high;
  std::vector<std::uint8_t> bytes(log::kFileHeaderSize);
  log::EncodeFileHeader(fh, bytes.data());

  LogReaderOptions lo;
  lo.skip_through_epoch = from;
  lo.decode_deltas = false;
  auto reader = LogReader::Open(log_dir, lo);
  if (!reader.ok()) return reader.status();
  LogEntry e;
  std::vector<std::uint8_t> commit;
  std::uint32_t counted = 0;
  std::size_t group_start = bytes.size();
  for (;;) {
    auto more = (*reader)->Next(&e);
    if (!more.ok()) return more.status();
    if (!*more) break;
    const auto t = static_cast<LogRecordType>(e.raw_type);
    if (t == LogRecordType::kCheckpointMarker) continue;  // names the original's files
    if (t == LogRecordType::kCommit) {
      if (e.commit.epoch <= from) {
        bytes.resize(group_start);
        counted = 0;
        continue;
      }
      if (e.commit.epoch > to) break;
      if (counted != e.commit.record_count) {
        return Corruption(fmt::format("{}: epoch {} counts {} records, the log holds {}",
                                      (*reader)->files()[e.file_index], e.commit.epoch,
                                      e.commit.record_count, counted));
      }
      commit.clear();
      log::EncodeCommit(e.commit, commit);
      log::AppendRecord(bytes, log_id, e.raw_type, commit);
      ++out.groups;
      out.records += counted + 1;
      counted = 0;
      group_start = bytes.size();
      continue;
    }
    if (t == LogRecordType::kEvent) {
      if (e.epoch > from && e.epoch <= to) log::AppendRecord(bytes, log_id, e.raw_type, e.payload);
      continue;
    }
    if (e.epoch <= from) continue;
    log::AppendRecord(bytes, log_id, e.raw_type, e.payload);
    ++counted;
  }
  bytes.resize(group_start);  // nothing after the last commit
  auto f = env->NewWritableFile(out_dir + "/" + log::SegmentFileName(1));
  if (!f.ok()) return f.status();
  MMSB_RETURN_IF_ERROR((*f)->Append(bytes));
  MMSB_RETURN_IF_ERROR((*f)->Sync());
  MMSB_RETURN_IF_ERROR((*f)->Close());
  MMSB_RETURN_IF_ERROR(env->SyncDir(out_dir));
  out.bytes += bytes.size();
  return out;
}

}  // namespace mmsb::query
