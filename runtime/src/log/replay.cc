// Replayer: checkpoint plus committed epoch groups to the state of any epoch.
#include "mmsb/replay.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"

#include "delta/delta_view.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/memory_limit.h"
#include "log/recompute.h"
#include "log/record_reader.h"
#include "log/replayer_impl.h"
#include "log/segments.h"
#include "log/state_hash.h"

namespace mmsb {

void Replayer::Impl::DeliverEvents() {
  for (auto it = pending_events.begin(); it != pending_events.end();) {
    if (it->epoch <= st.epoch) {
      if (opts.collect_events && it->epoch <= opts.epoch) rep.events.push_back(std::move(*it));
      it = pending_events.erase(it);
    } else {
      ++it;
    }
  }
}

void Replayer::Impl::Recompute(const LogCommit& c, std::size_t at) {
  changed_runs.clear();
  for (std::size_t k = 0; k < at; ++k) {
    const Op& op = group[k];
    if (op.raw_type != static_cast<std::uint8_t>(LogRecordType::kDelta)) continue;
    if (!recompute.Feeds(st, op.delta.page)) continue;
    delta_internal::AppendDeltaViewRuns(op.delta, &changed_runs[op.delta.page]);
  }
  const std::uint32_t n = recompute.Run(st, c.epoch, changed_runs);
  rep.deltas_recomputed += n;
  if (tracker.valid() && n != 0) {
    // The recomputed children's runs are in changed_runs (next to their parents', which were
    // tracked at their deltas: hashing those blocks again is redundant, not wrong).
    for (const auto& [id, runs] : changed_runs) {
      auto it = st.pages.find(id);
      if (it == st.pages.end()) continue;
      for (const ByteRun& r : runs) tracker.Range(id, it->second.bytes, r.offset, r.length);
      tracker.SetEpoch(id, it->second.epoch);
    }
  }
  const LogRecompute& rec = group_recomputes[group[at].side_index];
  if (n != rec.pages) {
    std::string m = fmt::format(
        "recomputing changed {} pages, but the log left out {} derived deltas", n, rec.pages);
    rep.problems.push_back({LogProblem::Kind::kInconsistent, FileName(group[at].file_index),
                            group[at].offset, 0, c.epoch, std::move(m)});
  }
}

void Replayer::Impl::ApplyJobsHere() {
  for (const log::ApplyWorker::Delta& d : jobs) delta_internal::ApplyDeltaView(d.view, d.page);
  jobs.clear();
  job_bytes = 0;
}

void Replayer::Impl::Drain() {
  worker.Wait();
  if (reader) reader->ReleaseRetained(release_mark);
}

Status Replayer::Impl::Apply(const LogCommit& c) {
  // The previous group's deltas land before this group reads or changes any page.
  Drain();
  const bool track = tracker.valid();
  // Deltas are gathered for the worker unless the state hash is kept (it reads each page right
  // after its delta). The records that read or replace pages apply the gathered ones first.
  const bool gather =
      !track && opts.apply_thread_min_bytes != ~std::uint64_t{0} && log::ApplyWorker::Useful();
  bool edges_changed = false;
  for (std::size_t i = 0; i < group.size(); ++i) {
    Op& op = group[i];
    if (!log::KnownLogType(op.raw_type)) continue;
    if (!jobs.empty() && op.type != LogRecordType::kDelta) ApplyJobsHere();
    switch (op.type) {
      case LogRecordType::kRunStart:
        st.pages.clear();
        st.edges.clear();
        recompute.Invalidate();
        allocated = 0;
        if (track) tracker.Reset();
        break;
      case LogRecordType::kRecompute:
        Recompute(c, i);
        break;
      case LogRecordType::kTypeDescriptor:
        st.types[group_types[op.side_index]->name] = group_types[op.side_index];
        break;
      case LogRecordType::kPageCreate: {
        LogPageCreate& pc = group_creates[op.side_index];
        ReplayedPage& p = st.pages[pc.id];
        p.id = pc.id;
        p.name = std::move(pc.name);
        p.location = pc.location;
        p.is_static = pc.is_static;
        p.type_name = std::move(pc.type_name);
        auto t = st.types.find(p.type_name);
        p.type = t == st.types.end() ? nullptr : t->second;
        p.epoch = c.epoch - 1;
        p.changed = false;
        p.bytes.assign(pc.size, 0);
        allocated += pc.size;
        if (track)
          tracker.Page(p.id, p.name, p.type_name, p.location, p.is_static, p.epoch, p.bytes);
        break;
      }
      case LogRecordType::kPageFree: {
        auto it = st.pages.find(op.freed_page);
        if (it != st.pages.end()) {
          allocated -= std::min<std::uint64_t>(allocated, it->second.bytes.size());
          st.pages.erase(it);
        }
        if (track) tracker.Remove(op.freed_page);
        const auto touches = [&](const EdgeInfo& e) {
          return e.parent == op.freed_page || e.child == op.freed_page;
        };
        if (std::erase_if(st.edges, touches) != 0) {
          recompute.Invalidate();
          edges_changed = true;
        }
        break;
      }
      case LogRecordType::kGraphEdge: {
        const LogEdgeChange& ec = group_edges[op.side_index];
        const EdgeInfo& e = ec.edge;
        auto it = std::lower_bound(st.edges.begin(), st.edges.end(), e, log::EdgeLess);
        const bool present = it != st.edges.end() && it->parent == e.parent && it->child == e.child;
        if (ec.op == EdgeOp::kAdd) {
          if (present) {
            *it = e;
          } else {
            st.edges.insert(it, e);
          }
        } else if (present) {
          st.edges.erase(it);
        }
        recompute.Invalidate();
        edges_changed = true;
        break;
      }
      case LogRecordType::kDelta: {
        ReplayedPage& p = op.target != nullptr ? *op.target : st.pages.at(op.delta.page);
        MMSB_CHECK(p.bytes.size() == op.delta.page_size);  // Validate checked it
        if (gather) {
          jobs.push_back({op.delta, p.bytes.data()});
          job_bytes += op.delta.total;
        } else {
          delta_internal::ApplyDeltaView(op.delta, p.bytes.data());
        }
        p.epoch = c.epoch;
        p.changed = true;
        ++rep.deltas_applied;
        if (track) {
          track_runs.clear();
          delta_internal::AppendDeltaViewRuns(op.delta, &track_runs);
          for (const ByteRun& r : track_runs) tracker.Range(p.id, p.bytes, r.offset, r.length);
          tracker.SetEpoch(p.id, p.epoch);
        }
        break;
      }
      default:
        break;
    }
  }
  if (!jobs.empty()) {
    if (job_bytes >= opts.apply_thread_min_bytes) {
      // The worker applies them while the next group is read: its payloads stay where they are
      // (a retained mapping, or this arena, which the next group does not reuse).
      std::swap(arena, arena_in_flight);
      worker.Submit(jobs);
      jobs.clear();
      job_bytes = 0;
    } else {
      ApplyJobsHere();
    }
  }
  // What the reader retained so far holds this group's records and older ones only: the next
  // Drain() may let it go.
  if (reader) release_mark = reader->RetainMark();
  if (track && edges_changed) tracker.Edges(st.edges);
  st.epoch = c.epoch;
  st.unix_nanos = c.unix_nanos;
  st.page_id_high = std::max(st.page_id_high, c.page_id_high);
  ++rep.epochs_applied;
  rep.epoch = st.epoch;
  ClearGroup();
  tainted = false;
  DeliverEvents();
  return Status::Ok();
}

Status Replayer::Impl::Close(const LogCommit& c, std::uint64_t offset, std::size_t file_index) {
  if (tainted && group.size() >= c.record_count &&
      (c.record_count == 0 || group[group.size() - c.record_count].offset >= damage_end)) {
    // A group is the record_count records right before its commit record. When all of them lie
    // after the damage, the damage only ate earlier records (whose own commit was lost).
    const std::size_t lost = group.size() - c.record_count;
    if (lost > 0) {
      rep.problems.push_back(
          {LogProblem::Kind::kDroppedEpoch, FileName(file_index), group.front().offset,
           group[lost - 1].offset - group.front().offset, group.front().epoch,
           fmt::format("{} records before damage whose commit record was lost", lost)});
      ++rep.epochs_dropped;
      group.erase(group.begin(), group.begin() + static_cast<std::ptrdiff_t>(
                                                     lost));  // side vectors keep their entries
    } else if (c.epoch > st.epoch + 1) {
      rep.problems.push_back(
          {LogProblem::Kind::kDroppedEpoch, FileName(file_index), offset, 0, st.epoch + 1,
           fmt::format("epochs {}..{} were lost in damage", st.epoch + 1, c.epoch - 1)});
      rep.epochs_dropped += c.epoch - st.epoch - 1;
    }
    tainted = false;
  }
  if (tainted) {
    DropGroup(c.epoch, file_index, offset, "damage inside the epoch's group");
    if (opts.mode == RecoveryMode::kStrict) return Corruption(rep.problems.back().ToString());
    return Status::Ok();
  }
  if (c.record_count != group.size()) {
    DropGroup(c.epoch, file_index, offset,
              fmt::format("the commit record counts {} records but the group has {}",
                          c.record_count, group.size()));
    if (opts.mode == RecoveryMode::kStrict) return Corruption(rep.problems.back().ToString());
    return Status::Ok();
  }
  std::vector<LogProblem> chain;
  if (auto p = Validate(c, &chain)) {
    rep.problems.push_back(*p);
    if (opts.mode == RecoveryMode::kStrict) {
      ClearGroup();
      return Corruption(p->ToString());
    }
    DropGroup(c.epoch, file_index, offset, "an inconsistent record: " + p->message);
    return Status::Ok();
  }
  if (!chain.empty()) {
    rep.problems.insert(rep.problems.end(), chain.begin(), chain.end());
    if (opts.mode == RecoveryMode::kStrict) {
      ClearGroup();
      return Corruption(chain.front().ToString());
    }
  }
  return Apply(c);
}

Expected<Epoch> Replayer::Impl::AdvanceTo(Epoch target) {
  if (!deferred.ok()) return deferred;
  const DrainOnExit drain{this};  // the caller reads the state once this returns, on every path
  while (reader) {
    if (have_stash) {
      if (stash.epoch > target) break;
      have_stash = false;
      MMSB_RETURN_IF_ERROR(Close(stash, stash_offset, stash_file));
      continue;
    }
    if (at_end) break;
    LogCommit c;
    std::uint64_t off = 0;
    std::size_t file = 0;
    auto r = ReadGroup(&c, &off, &file);
    if (!r.ok()) {
      if (st.epoch >= target && target != kLatestEpoch) {
        // Past the target already: the damage does not concern this epoch. Report it later.
        deferred = r.status();
        break;
      }
      return r.status();
    }
    if (!*r) break;
    if (c.epoch > target) {
      have_stash = true;
      stash = c;
      stash_offset = off;
      stash_file = file;
      break;
    }
    MMSB_RETURN_IF_ERROR(Close(c, off, file));
  }
  rep.epoch = st.epoch;
  return st.epoch;
}

Expected<bool> Replayer::Impl::Step() {
  const Epoch before = st.epoch;
  const DrainOnExit drain{this};
  while (reader && st.epoch == before) {
    if (have_stash) {
      have_stash = false;
      MMSB_RETURN_IF_ERROR(Close(stash, stash_offset, stash_file));
      continue;
    }
    if (at_end) return false;
    LogCommit c;
    std::uint64_t off = 0;
    std::size_t file = 0;
    auto r = ReadGroup(&c, &off, &file);
    if (!r.ok()) return r.status();
    if (!*r) return false;
    MMSB_RETURN_IF_ERROR(Close(c, off, file));
  }
  rep.epoch = st.epoch;
  return st.epoch != before;
}

Replayer::Replayer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replayer::~Replayer() = default;

Expected<std::unique_ptr<Replayer>> Replayer::Open(const std::string& path,
                                                   const ReplayOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->env = options.env ? options.env : Env::Default();
  impl->max_total = log::EffectiveMemoryLimit(options.max_total_bytes);
  Env* env = impl->env;
  LogReaderOptions reader_options;
  reader_options.mode = options.mode;
  reader_options.decode_deltas = false;  // deltas are applied in place from their encoded bytes
  reader_options.retain_files = true;    // until the apply worker is done with a group (Drain)
  reader_options.env = env;
  reader_options.max_page_bytes = options.max_page_bytes;
  CheckpointLoadOptions checkpoint_options;
  checkpoint_options.env = env;
  checkpoint_options.max_page_bytes = options.max_page_bytes;
  checkpoint_options.max_total_bytes = impl->max_total;

  MMSB_RETURN_IF_ERROR(CheckLogPath(path, env));
  if (env->IsDirectory(path)) {
    auto listing = log::ListLogDir(env, path);
    if (!listing.ok()) return listing.status();
    std::uint64_t log_id = 0;
    Epoch first_base = 0;
    bool have_first = false;
    if (!listing->segments.empty()) {
      auto file = env->NewRandomAccessFile(listing->segments.front().path);
      if (file.ok()) {
        log::RecordReader record_reader(file->get(), listing->segments.front().path);
        log::FileHeader header;
        if (record_reader.ReadHeader(&header).ok()) {
          log_id = header.log_id;
          first_base = header.base_epoch;
          have_first = true;
        }
      }
    }
    if (options.use_checkpoints && options.epoch > 0) {
      for (auto it = listing->checkpoints.rbegin(); it != listing->checkpoints.rend(); ++it) {
        if (it->epoch > options.epoch) continue;
        checkpoint_options.expect_log_id = log_id;
        auto checkpoint = LoadCheckpoint(it->path, checkpoint_options);
        if (!checkpoint.ok()) {
          impl->rep.problems.push_back(
              {LogProblem::Kind::kCorruption, it->path, 0, 0, it->epoch,
               "checkpoint unusable, trying an older one: " + checkpoint.status().message()});
          continue;
        }
        impl->st = std::move(*checkpoint);
        impl->base = impl->st.epoch;
        impl->allocated = impl->st.PageBytes();
        impl->rep.checkpoint_epoch = impl->base;
        impl->rep.checkpoint_file = it->path;
        break;
      }
    }
    if (impl->rep.checkpoint_epoch == 0 && have_first && first_base > 0 && options.epoch > 0) {
      return NotFound(fmt::format(
          "log '{}' starts after epoch {} (older segments were retired) and no usable checkpoint "
          "is at or before epoch {}",
          path, first_base,
          options.epoch == kLatestEpoch ? std::string("latest") : std::to_string(options.epoch)));
    }
    reader_options.skip_through_epoch = impl->base;
    auto reader = LogReader::Open(path, reader_options);
    if (!reader.ok()) return reader.status();
    impl->reader = std::move(*reader);
    impl->rep.epoch = impl->st.epoch;
    return std::unique_ptr<Replayer>(new Replayer(std::move(impl)));
  }

  // One file: a checkpoint, or a segment that starts the log.
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  log::RecordReader record_reader(file->get(), path);
  log::FileHeader header;
  MMSB_RETURN_IF_ERROR(record_reader.ReadHeader(&header));
  if (header.checkpoint) {
    auto checkpoint = LoadCheckpoint(path, checkpoint_options);
    if (!checkpoint.ok()) return checkpoint.status();
    impl->st = std::move(*checkpoint);
    impl->rep.checkpoint_epoch = impl->st.epoch;
    impl->rep.checkpoint_file = path;
    impl->rep.epoch = impl->st.epoch;
    impl->rep.last_log_epoch = impl->st.epoch;
    return std::unique_ptr<Replayer>(new Replayer(std::move(impl)));
  }
  if (header.base_epoch > 0) {
    return FailedPrecondition(fmt::format(
        "segment '{}' starts after epoch {}: replay the log directory, which has the earlier state",
        path, header.base_epoch));
  }
  auto reader = LogReader::Open(path, reader_options);
  if (!reader.ok()) return reader.status();
  impl->reader = std::move(*reader);
  return std::unique_ptr<Replayer>(new Replayer(std::move(impl)));
}

std::unique_ptr<Replayer> Replayer::FromState(LogState state, const ReplayOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->env = options.env ? options.env : Env::Default();
  impl->max_total = log::EffectiveMemoryLimit(options.max_total_bytes);
  impl->st = std::move(state);
  impl->base = impl->st.epoch;
  impl->allocated = impl->st.PageBytes();
  impl->at_end = true;
  impl->rep.epoch = impl->st.epoch;
  impl->rep.last_log_epoch = impl->st.epoch;
  return std::unique_ptr<Replayer>(new Replayer(std::move(impl)));
}

Expected<Epoch> Replayer::ApplyGroup(std::span<const std::uint8_t> records, std::uint64_t log_id) {
  Impl& m = *impl_;
  if (!m.deferred.ok()) return m.deferred;
  if (m.reader && !m.at_end) {
    return FailedPrecondition("ApplyGroup: the Replayer has not reached the end of its log");
  }
  // A group of an epoch already applied (a follower receiving it again) is skipped: find its
  // commit record, the last record, by walking the frames (the reader checks them afterwards).
  std::size_t at = 0, last = records.size();
  while (records.size() - at >= log::kRecordHeaderSize) {
    const std::uint64_t len = log::Get32(records.data() + at + 4);
    if (len > records.size() - at - log::kRecordHeaderSize) break;
    last = at;
    at += log::kRecordHeaderSize + len;
  }
  if (last < records.size() &&
      records[last + 8] == static_cast<std::uint8_t>(LogRecordType::kCommit)) {
    LogCommit c;
    const auto payload =
        records.subspan(last + log::kRecordHeaderSize, log::Get32(records.data() + last + 4));
    if (log::DecodeCommit(payload, &c).ok() && c.epoch <= m.st.epoch) return m.st.epoch;
  }
  LogReaderOptions ro;
  ro.mode = m.opts.mode;
  ro.decode_deltas = false;
  ro.max_page_bytes = m.opts.max_page_bytes;
  auto r = LogReader::OpenBuffer(records, log_id, m.st.epoch, ro);
  if (!r.ok()) return r.status();
  // The group is read like the next segment of the log: epochs at or before the state's are
  // skipped, a group without its commit record is reported incomplete and not applied.
  m.reader = std::move(*r);
  m.release_mark = 0;  // marks count what one reader retained
  m.problems_seen = 0;
  m.group_file = ~std::size_t{0};
  m.have_stash = false;
  m.at_end = false;
  m.base = std::max(m.base, m.st.epoch);
  m.ClearGroup();
  auto e = m.AdvanceTo(kLatestEpoch);
  m.ClearGroup();
  m.reader.reset();  // after the apply: delta views point into its image
  m.at_end = true;
  return e;
}

Expected<Epoch> Replayer::AdvanceTo(Epoch epoch) {
  // The state never goes back: a replay that starts from a checkpoint file cannot answer an
  // earlier epoch, and must not answer it with the checkpoint's.
  if (epoch < impl_->st.epoch) {
    return NotFound(fmt::format("epoch {} is before the state this replay holds (epoch {}{}{})",
                                epoch, impl_->st.epoch,
                                impl_->rep.checkpoint_file.empty() ? "" : ", from checkpoint ",
                                impl_->rep.checkpoint_file));
  }
  return impl_->AdvanceTo(epoch);
}
Expected<bool> Replayer::Step() { return impl_->Step(); }
const LogState& Replayer::state() const { return impl_->st; }
LogState Replayer::TakeState() {
  impl_->tracker.Invalidate();
  return std::move(impl_->st);
}

std::uint64_t Replayer::ReplicaHash() {
  Impl& m = *impl_;
  if (!m.tracker.valid()) {
    m.tracker.Reset();
    for (const auto& [id, p] : m.st.pages) {
      m.tracker.Page(id, p.name, p.type_name, p.location, p.is_static, p.epoch, p.bytes);
    }
    m.tracker.Edges(m.st.edges);
  }
  return m.tracker.Digest(m.st.epoch, m.st.page_id_high);
}
const ReplayReport& Replayer::report() const { return impl_->rep; }

Expected<LogState> Replay(const std::string& path, const ReplayOptions& options,
                          ReplayReport* report) {
  auto r = Replayer::Open(path, options);  // epoch 0 too: the path must be a log
  if (!r.ok()) return r.status();
  auto e = (*r)->AdvanceTo(options.epoch);
  if (report) *report = (*r)->report();
  if (!e.ok()) return e.status();
  if (options.epoch != kLatestEpoch && *e < options.epoch &&
      (*r)->report().last_log_epoch < options.epoch) {
    return NotFound(fmt::format("epoch {} is beyond the end of log '{}' (last committed epoch {})",
                                options.epoch, path, (*r)->report().last_log_epoch));
  }
  return (*r)->TakeState();
}

}  // namespace mmsb
