// The epoch group reader: reads records up to the next commit record into the replayer's group,
// drops a group that damage or a segment's end cut short, and keeps the reader's problems.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mmsb/replay.h"

#include "log/replayer_impl.h"

namespace mmsb {

const std::string& Replayer::Impl::FileName(std::size_t i) const {
  static const std::string kNone;
  return reader && i < reader->files().size() ? reader->files()[i] : kNone;
}

void Replayer::Impl::TakeReaderProblems(std::size_t file_index) {
  if (!reader) return;
  const auto& ps = reader->problems();
  for (; problems_seen < ps.size(); ++problems_seen) {
    const LogProblem& p = ps[problems_seen];
    rep.problems.push_back(p);
    if (p.is_error() && p.file == FileName(file_index)) {
      tainted = true;
      damage_end = std::max(damage_end, p.offset + p.length);
    }
  }
}

void Replayer::Impl::ClearGroup() {
  group.clear();
  group_creates.clear();
  group_types.clear();
  group_edges.clear();
  group_recomputes.clear();
  arena.Reset();
  // No group holds views any more: with none in flight either, nothing the reader retained
  // (LogReaderOptions::retain_files) is needed (a skipped or dropped group must not pile it up).
  if (reader && worker.idle()) reader->ReleaseRetained(reader->RetainMark());
}

void Replayer::Impl::DropGroup(Epoch epoch, std::size_t file_index, std::uint64_t offset,
                               std::string why) {
  std::uint64_t first = group.empty() ? offset : group.front().offset;
  rep.problems.push_back({LogProblem::Kind::kDroppedEpoch, FileName(file_index), first,
                          offset >= first ? offset - first : 0, epoch, std::move(why)});
  ++rep.epochs_dropped;
  ClearGroup();
  tainted = false;
  std::erase_if(pending_events, [&](const ReplayedEvent& e) { return e.epoch <= epoch; });
}

Expected<bool> Replayer::Impl::ReadGroup(LogCommit* commit, std::uint64_t* commit_offset,
                                         std::size_t* commit_file) {
  LogEntry& e = entry;
  for (;;) {
    auto r = reader->Next(&e);
    if (r.ok() && *r && e.file_index != group_file) {
      // A new segment: a group left open in the previous one never got its commit record.
      if (!group.empty()) {
        DropGroup(group.front().epoch, group_file, group.back().offset,
                  "the segment ends before the epoch's commit record");
      }
      tainted = false;
      damage_end = 0;
      group_file = e.file_index;
    }
    TakeReaderProblems(r.ok() && *r ? e.file_index : group_file);
    if (!r.ok()) return r.status();
    rep.bytes_read = reader->bytes_read();
    if (opts.progress && rep.bytes_read >= next_progress) {
      opts.progress(rep.bytes_read, reader->total_bytes());
      next_progress = rep.bytes_read + (std::uint64_t{16} << 20);
    }
    if (!*r) {
      if (!group.empty()) {
        rep.problems.push_back(
            {LogProblem::Kind::kIncompleteEpoch, FileName(group.front().file_index),
             group.front().offset, 0, st.epoch + 1,
             fmt::format(
                 "{} records after the last commit record (a commit that never finished) ignored",
                 group.size())});
        ClearGroup();
      }
      at_end = true;
      return false;
    }
    ++rep.records;
    if (e.type == LogRecordType::kCommit &&
        e.raw_type == static_cast<std::uint8_t>(LogRecordType::kCommit)) {
      rep.last_log_epoch = std::max(rep.last_log_epoch, e.commit.epoch);
      if (e.commit.epoch <= base) {
        ClearGroup();
        tainted = false;
        continue;
      }
      *commit = e.commit;
      *commit_offset = e.offset;
      *commit_file = e.file_index;
      return true;
    }
    if (e.raw_type == static_cast<std::uint8_t>(LogRecordType::kEvent)) {
      if (e.epoch > base) pending_events.push_back({e.epoch, {e.event.begin(), e.event.end()}});
      if (e.epoch <= st.epoch) DeliverEvents();
      continue;
    }
    if (e.raw_type == static_cast<std::uint8_t>(LogRecordType::kCheckpointMarker)) continue;
    if (e.epoch <= base) continue;
    Op& op = group.emplace_back();
    op.raw_type = e.raw_type;
    op.type = e.type;
    op.file_index = static_cast<std::uint32_t>(e.file_index);
    op.offset = e.offset;
    op.epoch = e.epoch;
    if (!log::KnownLogType(e.raw_type)) {
      ++rep.unknown_records;  // counted in the group, not applied
      continue;
    }
    switch (e.type) {
      case LogRecordType::kPageCreate:
        op.side_index = static_cast<std::uint32_t>(group_creates.size());
        group_creates.push_back(std::move(e.page_create));
        e.page_create = {};
        break;
      case LogRecordType::kPageFree:
        op.freed_page = e.page_free;
        break;
      case LogRecordType::kTypeDescriptor:
        op.side_index = static_cast<std::uint32_t>(group_types.size());
        group_types.push_back(std::make_shared<TypeDescriptor>(std::move(e.type_descriptor)));
        e.type_descriptor = {};
        break;
      case LogRecordType::kGraphEdge:
        op.side_index = static_cast<std::uint32_t>(group_edges.size());
        group_edges.push_back(e.edge);
        break;
      case LogRecordType::kRecompute:
        op.side_index = static_cast<std::uint32_t>(group_recomputes.size());
        group_recomputes.push_back(e.recompute);
        break;
      case LogRecordType::kDelta: {
        // The record's payload check covered these bytes, so the envelope checksum is not
        // verified again; every structural check is (see delta/delta_view.h).
        const auto bytes = e.payload_mapped ? e.payload : arena.Copy(e.payload);
        const auto limit =
            static_cast<std::uint32_t>(std::min<std::uint64_t>(opts.max_page_bytes, 0xFFFFFFFFu));
        if (Status ds = delta_internal::ParseDeltaView(bytes, limit, false, &op.delta); !ds.ok()) {
          LogProblem p{
              LogProblem::Kind::kCorruption,
              FileName(e.file_index),
              e.offset,
              e.framed_size,
              e.epoch,
              "checksums match but the payload does not decode: delta record: " + ds.ToString()};
          group.pop_back();
          rep.problems.push_back(p);
          if (opts.mode == RecoveryMode::kStrict) return Corruption(p.ToString());
          tainted = true;
          damage_end = std::max(damage_end, e.offset + e.framed_size);
        }
        break;
      }
      default:
        break;  // run-start carries nothing replay needs beyond its type
    }
  }
}

}  // namespace mmsb
