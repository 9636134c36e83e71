// Slice: a self-contained log of a window of epochs.
//
// The state at `from` comes from the newest checkpoint at or before it plus the epochs after it
// (Replay), and is written as the new log's checkpoint. The groups of epochs from + 1 .. to are
// then copied record by record (the same payloads, reframed under the new log's id), each
// committed with its original epoch and time, so replaying the slice to any epoch of the window
// applies exactly the records the original applies from the same state.
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
  LogOptions wo;
  wo.durability = Durability::kNone;
  wo.retire_segments = false;
  auto writer = LogWriter::Open(out_dir, wo);
  if (!writer.ok()) return writer.status();
  LogWriter& w = **writer;

  SliceReport out;
  out.from = from;
  out.to = to;
  out.checkpoint = out_dir + "/" + log::CheckpointFileName(from);
  CheckpointOptions co;
  co.sync = false;  // synced below, with the segments
  auto ck = WriteCheckpointFile(out.checkpoint, ContentsOf(*state, w.log_id()), co);
  if (!ck.ok()) return ck.status();
  out.bytes += *ck;

  LogReaderOptions lo;
  lo.skip_through_epoch = from;
  lo.decode_deltas = false;
  auto reader = LogReader::Open(log_dir, lo);
  if (!reader.ok()) return reader.status();
  LogBatch batch = w.NewBatch();
  LogEntry e;
  for (;;) {
    auto more = (*reader)->Next(&e);
    if (!more.ok()) return more.status();
    if (!*more) break;
    const auto t = static_cast<LogRecordType>(e.raw_type);
    if (t == LogRecordType::kCheckpointMarker) continue;  // names the original's files
    if (t == LogRecordType::kCommit) {
      if (e.commit.epoch <= from) {
        batch.Clear();
        continue;
      }
      if (e.commit.epoch > to) break;
      if (batch.record_count() != e.commit.record_count) {
        return Corruption(fmt::format("{}: epoch {} counts {} records, the log holds {}",
                                      (*reader)->files()[e.file_index], e.commit.epoch,
                                      e.commit.record_count, batch.record_count()));
      }
      auto c = w.Commit(batch, e.commit.epoch, e.commit.unix_nanos);
      if (!c.ok()) return c.status();
      ++out.groups;
      out.records += batch.record_count() + 1;
      batch.Clear();
      continue;
    }
    if (t == LogRecordType::kEvent) {
      if (e.epoch > from && e.epoch <= to) batch.AddRaw(e.raw_type, e.payload);
      continue;
    }
    if (e.epoch <= from) continue;
    if (t == LogRecordType::kPageCreate) {
      batch.AddPageCreate(e.page_create);  // the same bytes; keeps the commit's page id high
    } else {
      batch.AddRaw(e.raw_type, e.payload);
    }
  }
  MMSB_RETURN_IF_ERROR(w.Sync());
  out.bytes += w.counters().bytes;
  MMSB_RETURN_IF_ERROR(w.Close());
  MMSB_RETURN_IF_ERROR(env->SyncDir(out_dir));
  return out;
}

}  // namespace mmsb::query
