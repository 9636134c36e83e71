// LogSink: the bus's commits, pages, types and graph edges into the log.
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "mmsb/checkpoint.h"
#include "mmsb/events.h"
#include "mmsb/formats/unit_note.h"
#include "mmsb/log.h"
#include "mmsb/mmsb.h"
#include "mmsb/page.h"

#include "delta/delta_internal.h"
#include "log/commit_info_frame.h"
#include "log/log_format.h"
#include "log/log_records.h"
#include "log/recompute.h"
#include "log/state_hash.h"

namespace mmsb {
namespace {

bool SameEdge(const EdgeInfo& a, const EdgeInfo& b) {
  return a.parent == b.parent && a.child == b.child && a.kind == b.kind && a.policy == b.policy &&
         a.projection.src_offset == b.projection.src_offset &&
         a.projection.length == b.projection.length &&
         a.projection.dst_offset == b.projection.dst_offset;
}

// Forks seen by this process image: a child handler counts them, so a sink can tell that it was
// inherited (its writer's buffers, lock and threads belong to the parent).
std::atomic<std::uint64_t> g_forks{0};

std::uint64_t ForkGeneration() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(nullptr, nullptr, [] { g_forks.fetch_add(1, std::memory_order_relaxed); });
  });
  return g_forks.load(std::memory_order_relaxed);
}

// What dl_iterate_phdr finds in the loaded objects: the main program's GNU build id (its PT_NOTE
// NT_GNU_BUILD_ID, as hex) and the unit notes of every object (mmsb/formats/unit_note.h), the
// main program's first, then the shared objects' in load order.
struct LoadedNotes {
  std::string build_id;
  std::vector<unit_note::Unit> units;
  bool first = true;
};

int ReadNotes(dl_phdr_info* info, std::size_t, void* out) {
  auto* found = static_cast<LoadedNotes*>(out);
  const bool main_program = found->first;
  found->first = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the loader gives the note's address as an integer
    const auto* p = reinterpret_cast<const std::uint8_t*>(info->dlpi_addr + ph.p_vaddr);
    const std::span<const std::uint8_t> notes(p, ph.p_memsz);
    unit_note::ParseNotes(notes, ph.p_align, &found->units);
    if (!main_program || !found->build_id.empty()) continue;
    const std::size_t align = ph.p_align == 8 ? 8 : 4;  // laid out as unit_note::ParseNotes says
    auto up = [align](std::size_t n) { return (n + align - 1) / align * align; };
    std::size_t at = 0;
    while (notes.size() - at >= sizeof(ElfW(Nhdr))) {
      ElfW(Nhdr) n;
      std::memcpy(&n, notes.data() + at, sizeof n);
      const std::size_t left = notes.size() - at;
      const std::size_t desc_at = up(sizeof n + n.n_namesz);
      if (desc_at > left || n.n_descsz > left - desc_at) break;
      const std::uint8_t* name = notes.data() + at + sizeof n;
      const std::uint8_t* desc = notes.data() + at + desc_at;
      if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        for (std::uint32_t k = 0; k < n.n_descsz; ++k)
          found->build_id += fmt::format("{:02x}", desc[k]);
        break;
      }
      const std::size_t next = up(desc_at + n.n_descsz);
      if (next >= left) break;
      at += next;
    }
  }
  return 0;  // every loaded object: shared libraries carry unit notes too
}

// The build this process runs (a build record, docs/SerializationSpec.md "Provenance"): read once,
// at the first run start. Objects loaded later (dlopen) are not listed.
LogBuild CurrentBuild() {
  static const LogBuild kBuild = [] {
    LogBuild b;
    LoadedNotes found;
    dl_iterate_phdr(ReadNotes, &found);
    b.build_id = std::move(found.build_id);
    std::set<std::pair<std::string, std::uint64_t>> seen;  // a TU linked twice is one unit
    for (unit_note::Unit& u : found.units) {
      if (!seen.emplace(u.source, u.content_hash).second) continue;
      b.units.push_back({std::move(u.source), u.content_hash});
    }
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) b.executable.assign(path, static_cast<std::size_t>(n));
    return b;
  }();
  return kBuild;
}

}  // namespace

struct LogSink::State {
  std::uint64_t fork_generation = 0;  // ForkGeneration() when opened
  pid_t owner = 0;                    // the process that opened the log
  std::mutex mu;
  LogBatch batch;
  bool first = true;
  // log epoch = epoch_base + (bus epoch - bus_base); log page id = bus id + id_base.
  Epoch epoch_base = 0;
  Epoch bus_base = 0;
  PageId id_base = 0;
  Epoch last_bus_epoch = 0;  // last bus epoch appended
  // Pages logged with their full contents at the first commit: the epoch replay holds for them
  // until their next delta (their bus epoch predates the sink).
  std::unordered_map<PageId, Epoch> baseline_epoch;
  std::map<std::string, const TypeDescriptor*, std::less<>> types;  // logged, by name
  std::map<std::pair<PageId, PageId>, EdgeInfo> edges;  // logged, log ids, keyed (child, parent)
  std::uint64_t graph_version = 0;
  // Replay-recomputed children (bus ids, sorted) of the graph at recomputed_version.
  std::vector<PageId> recomputed;
  std::uint64_t recomputed_version = 0;
  bool recomputed_valid = false;
  std::map<Epoch, CommitTicket> tickets;  // bus epoch -> ticket, until AfterCommit
  std::vector<std::pair<Epoch, std::vector<std::uint8_t>>> pending_events;  // bus epoch
  bool checkpoint_requested = false;
  std::vector<Event> checkpoint_event;  // posted to subscribers after the commit lock is released
  std::vector<Event> events_scratch;
  Expected<Epoch> checkpoint_result = Status(StatusCode::kNotFound, "no checkpoint written");
  std::shared_ptr<LogGroupObserver> observer;
  bool observer_hash = false;
  std::vector<std::uint8_t> group_bytes;  // the group with its commit record, for the observer
  // LogState::ReplicaHash() of the logged state, kept from each commit's changes while an
  // observer wants it (state_hash.h); rebuilt from every live page when invalid.
  log::ReplicaHashTracker tracker;
  std::unordered_map<PageId, const Page*> tracked_pages;  // bus id -> page, while tracking
  bool edges_changed = false;

  void TrackWhole(const Page* p) {
    tracked_pages[p->id()] = p;
    tracker.Page(LogId(p->id()), p->name(), p->type() ? std::string_view(p->type()->name) : "",
                 p->location(), p->is_static(), PageLogEpoch(p->id(), p->epoch()),
                 CommittedImage(p));
  }
  void TrackEdges() {
    std::vector<EdgeInfo> sorted;
    sorted.reserve(edges.size());
    for (const auto& [key, e] : edges) sorted.push_back(e);
    tracker.Edges(sorted);
  }

  // The hash after this commit, from the committed images of what it changed: O(changed bytes).
  std::uint64_t LiveHash(const CommitBatch& b, PageId page_id_high) {
    if (!tracker.valid()) {
      tracker.Reset();
      tracked_pages.clear();
      for (const Page* p : b.live_pages) TrackWhole(p);
      TrackEdges();
    } else {
      for (PageId id : b.freed) {
        tracker.Remove(LogId(id));
        tracked_pages.erase(id);
      }
      for (const PageCreatedRecord& c : b.created) {
        if (tracked_pages.count(c.id)) continue;
        for (const Page* p : b.live_pages) {  // rare: a linear search is fine
          if (p->id() == c.id) {
            TrackWhole(p);
            break;
          }
        }
      }
      for (const Delta& d : b.deltas) {
        auto it = tracked_pages.find(d.page());
        if (it == tracked_pages.end()) continue;
        const Page* p = it->second;
        const std::span<const std::uint8_t> image = CommittedImage(p);
        const PageId id = LogId(p->id());
        d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
          tracker.Range(id, image, off, len);
        });
        tracker.SetEpoch(id, PageLogEpoch(p->id(), p->epoch()));
      }
      if (edges_changed) TrackEdges();
    }
    edges_changed = false;
    return tracker.Digest(LogEpoch(b.epoch), page_id_high);
  }

  // Provenance: sites logged in this run, by their static strings (mmsb/provenance.h).
  std::map<std::tuple<const char*, const char*, std::uint32_t, int>, std::uint32_t> sites;
  // The site found last: a program commits from few places, nearly always the one it committed
  // from last, so the common commit costs four compares here, not a map lookup.
  struct LastSite {
    const char* file = nullptr;
    const char* function = nullptr;
    std::uint32_t line = 0;
    CommitProvenance::Kind kind = CommitProvenance::Kind::kUnknown;
    std::uint32_t id = 0;
  } last_site;
  LogCommitInfo commit_info;  // reused: no allocation per commit
  // This sink's commit-info template (used under `mu`, like `batch`). A sink's own rather than the
  // thread's: no thread-local lookup per commit, and a sink opened anew starts from an empty one,
  // as its `sites` and `last_site` do.
  log::CommitInfoFramer framer;

  bool IsLastSite(const CommitProvenance& p) const {
    return p.file == last_site.file && p.function == last_site.function &&
           p.line == last_site.line && p.kind == last_site.kind && last_site.id != 0;
  }

  std::uint32_t SiteOf(const CommitProvenance& p) {
    return IsLastSite(p) ? last_site.id : InternSite(p);
  }

  // A site other than the last one: looked up, and logged if it is new to this run.
  [[gnu::noinline]] std::uint32_t InternSite(const CommitProvenance& p) {
    auto [it, fresh] = sites.try_emplace({p.file, p.function, p.line, static_cast<int>(p.kind)},
                                         static_cast<std::uint32_t>(sites.size() + 1));
    if (fresh) {
      batch.AddSite({it->second,
                     p.kind == CommitProvenance::Kind::kCommitCall ? LogSite::Kind::kCommitCall
                                                                   : LogSite::Kind::kTransaction,
                     p.line, p.function ? p.function : "", p.file ? p.file : ""});
    }
    last_site = {p.file, p.function, p.line, p.kind, it->second};
    return it->second;
  }

  // Logs the sites of `b`'s transactions not yet logged in this run, then the commit-info.
  void AddProvenance(const CommitBatch& b) {
    if (b.transactions.size() == 1) {
      // Every commit but a combined one: no LogCommitInfo to fill, the batch frames the record
      // from its template.
      // The common commit (the site of the last one) is four compares and the framer's append.
      const CommitProvenance& p = b.transactions[0];
      const std::uint32_t site = IsLastSite(p)                                ? last_site.id
                                 : p.kind != CommitProvenance::Kind::kUnknown ? InternSite(p)
                                                                              : 0;
      batch.AddCommitInfoFor(LogCommitTransaction{site, p.thread, p.sequence}, framer);
      return;
    }
    commit_info.transactions.resize(b.transactions.size());
    for (std::size_t i = 0; i < b.transactions.size(); ++i) {
      const CommitProvenance& p = b.transactions[i];
      LogCommitTransaction& t = commit_info.transactions[i];
      t.thread = p.thread;
      t.sequence = p.sequence;
      t.site = p.kind != CommitProvenance::Kind::kUnknown ? SiteOf(p) : 0;
    }
    batch.AddCommitInfo(commit_info);
  }

  Epoch LogEpoch(Epoch bus) const { return epoch_base + (bus - bus_base); }
  PageId LogId(PageId bus) const { return bus + id_base; }
  bool identity() const { return epoch_base == bus_base && id_base == 0; }
  // The log epoch replay holds for `page` whose bus epoch is `bus`.
  Epoch PageLogEpoch(PageId page, Epoch bus) const {
    if (auto it = baseline_epoch.find(page); it != baseline_epoch.end()) return it->second;
    return bus >= bus_base ? LogEpoch(bus) : epoch_base;
  }

  // Logs `t` and the record types its fields name (before it), once each.
  void AddType(const TypeDescriptor* t, const CommitBatch& b, int depth = 0) {
    if (t == nullptr || depth > 64) return;
    auto it = types.find(t->name);
    if (it != types.end() && it->second == t) return;
    types[t->name] = t;
    if (b.find_type) {
      for (const FieldDescriptor& f : t->fields) {
        if (f.kind == ScalarKind::kRecord && !f.record_type.empty()) {
          AddType(b.find_type(f.record_type), b, depth + 1);
        }
      }
    }
    batch.AddTypeDescriptor(*t);
  }
};

LogSink::~LogSink() { (void)Close(); }

Expected<std::shared_ptr<LogSink>> LogSink::Open(const std::string& dir,
                                                 const LogOptions& options) {
  auto w = LogWriter::Open(dir, options);
  if (!w.ok()) return w.status();
  std::shared_ptr<LogSink> sink(new LogSink());
  sink->writer_ = std::move(*w);
  sink->state_ = std::make_unique<State>();
  sink->state_->batch = sink->writer_->NewBatch();
  sink->state_->epoch_base = sink->writer_->last_epoch();
  sink->state_->id_base = sink->writer_->page_id_high();
  sink->state_->fork_generation = ForkGeneration();
  sink->state_->owner = ::getpid();
  return sink;
}

bool LogSink::forked() const {
  return state_ != nullptr && ForkGeneration() != state_->fork_generation;
}

Status LogSink::ForkedError() const {
  return FailedPrecondition(fmt::format(
      "log '{}' is written by process {}; this process ({}) is a fork of it and never appends "
      "to its parent's log: Close() the inherited sink (that only detaches it) and attach a log "
      "of its own",
      writer_ ? writer_->dir() : std::string(), state_->owner, ::getpid()));
}

Epoch LogSink::LogEpoch(Epoch bus_epoch) const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->LogEpoch(bus_epoch);
}

PageId LogSink::LogPageId(PageId bus_id) const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->LogId(bus_id);
}

Status LogSink::OnCommit(const CommitBatch& b) {
  if (forked()) return ForkedError();  // before the lock: the parent may have held it
  State& s = *state_;
  std::lock_guard<std::mutex> l(s.mu);
  s.batch.Clear();
  std::unordered_set<PageId> baseline_now;
  if (s.first) {
    s.bus_base = b.epoch - 1;
    std::vector<std::uint8_t> payload;
    log::EncodeRunStart(
        {s.epoch_base, s.id_base, b.unix_nanos, static_cast<std::uint32_t>(::getpid())}, payload);
    s.batch.AddRaw(static_cast<std::uint8_t>(LogRecordType::kRunStart), payload);
    s.batch.AddBuild(CurrentBuild());
    // Pages that existed before the sink: logged now, with their whole contents.
    std::unordered_set<PageId> created;
    for (const PageCreatedRecord& c : b.created) created.insert(c.id);
    const Epoch first_log = s.LogEpoch(b.epoch);
    for (const Page* p : b.live_pages) {
      if (created.count(p->id())) continue;
      s.AddType(p->type(), b);
      s.batch.AddPageCreate({s.LogId(p->id()), p->size(), p->location(), p->is_static(), p->name(),
                             p->type() ? p->type()->name : std::string()});
      // Against zeros, without a zero image (which would take the page's size in memory).
      const std::span<const std::uint8_t> image = CommittedImage(p);
      Delta d =
          delta_internal::DiffPageFromZeros(s.LogId(p->id()), first_log - 1, image.data(),
                                            static_cast<std::uint32_t>(image.size()), nullptr);
      if (!d.empty()) MMSB_RETURN_IF_ERROR(s.batch.AddDelta(d));
      s.baseline_epoch[p->id()] = d.empty() ? first_log - 1 : first_log;
      baseline_now.insert(p->id());
    }
  }
  for (const PageCreatedRecord& c : b.created) {
    s.AddType(c.type, b);
    s.batch.AddPageCreate({s.LogId(c.id), c.size, c.location, c.is_static, c.name,
                           c.type ? c.type->name : std::string()});
  }
  if (s.first || b.graph_version != s.graph_version) {
    std::map<std::pair<PageId, PageId>, EdgeInfo> now;
    for (EdgeInfo e : b.edges) {
      e.parent = s.LogId(e.parent);
      e.child = s.LogId(e.child);
      now[{e.child, e.parent}] = e;
    }
    for (const auto& [key, e] : s.edges) {
      if (!now.count(key)) s.batch.AddEdgeChange({EdgeOp::kRemove, e});
    }
    for (const auto& [key, e] : now) {
      auto it = s.edges.find(key);
      if (it == s.edges.end() || !SameEdge(it->second, e)) {
        s.batch.AddEdgeChange({EdgeOp::kAdd, e});
      }
    }
    s.edges = std::move(now);
    s.graph_version = b.graph_version;
    s.edges_changed = true;
  }
  if (!s.recomputed_valid || s.recomputed_version != b.graph_version) {
    s.recomputed = log::ReplayRecomputedChildren(b.edges);
    s.recomputed_version = b.graph_version;
    s.recomputed_valid = true;
  }
  // Propagation's deltas of replay-recomputed pages are left out; replay recomputes them at a
  // recompute record placed where propagation ran: after the collected and derived deltas, before
  // those of commit stages. Not in a session's first group, whose baseline images are not the
  // epoch's changes (replay could not recompute from them).
  const bool omit = !s.first && !s.recomputed.empty();
  std::uint32_t omitted = 0;
  auto log_delta = [&](const Delta& d) -> Status {
    if (baseline_now.count(d.page()))
      return Status::Ok();  // its full image is already in the batch
    auto bl = s.baseline_epoch.find(d.page());
    if (bl == s.baseline_epoch.end() && s.identity()) return s.batch.AddDelta(d);
    Delta t = d;
    t.set_page(s.LogId(d.page()));
    t.set_base_epoch(s.PageLogEpoch(d.page(), d.base_epoch()));
    if (bl != s.baseline_epoch.end()) s.baseline_epoch.erase(bl);
    return s.batch.AddDelta(t);
  };
  const std::size_t derived_end = std::min(b.derived_end, b.deltas.size());
  for (std::size_t i = 0; i < derived_end; ++i) {
    const Delta& d = b.deltas[i];
    if (omit && i >= b.derived_begin &&
        std::binary_search(s.recomputed.begin(), s.recomputed.end(), d.page())) {
      ++omitted;
      s.baseline_epoch.erase(d.page());  // replay holds the page at this epoch from here on
      continue;
    }
    MMSB_RETURN_IF_ERROR(log_delta(d));
  }
  if (omitted != 0) s.batch.AddRecompute({omitted});
  for (std::size_t i = derived_end; i < b.deltas.size(); ++i)
    MMSB_RETURN_IF_ERROR(log_delta(b.deltas[i]));
  for (PageId id : b.freed) {
    s.batch.AddPageFree(s.LogId(id));
    s.baseline_epoch.erase(id);
  }
  if (!b.events.empty() && writer_->options().log_events) {
    s.events_scratch.assign(b.events.begin(), b.events.end());
    if (!s.identity()) {
      for (Event& ev : s.events_scratch) {
        ev.epoch = s.LogEpoch(ev.epoch);
        if (ev.page != kInvalidPageId) ev.page = s.LogId(ev.page);
        if (ev.base_epoch != 0)
          ev.base_epoch = ev.base_epoch >= s.bus_base ? s.LogEpoch(ev.base_epoch) : s.epoch_base;
      }
    }
    s.batch.AddEvent(s.LogEpoch(b.epoch), EncodeEvents(s.events_scratch));
  }
  for (auto it = s.pending_events.begin(); it != s.pending_events.end();) {
    if (it->first <= b.epoch) {
      s.batch.AddEvent(it->first > s.bus_base ? s.LogEpoch(it->first) : s.LogEpoch(b.epoch),
                       it->second);
      it = s.pending_events.erase(it);
    } else {
      ++it;
    }
  }
  for (const VerifyMiss& m : b.verify_misses) {
    // A miss settled by a later commit names the window of the commit that saw the bytes, which
    // may precede this sink: clamp it into the log's epochs.
    const Epoch e = m.epoch > s.bus_base ? s.LogEpoch(m.epoch) : s.LogEpoch(b.epoch);
    Epoch after = m.after_epoch >= s.bus_base ? s.LogEpoch(m.after_epoch) : s.epoch_base;
    if (after >= e) after = e - 1;
    s.batch.AddVerifyMiss({s.LogId(m.page), m.offset, m.length, after, e, m.sampled, m.field});
  }
  if (writer_->options().log_provenance) s.AddProvenance(b);
  s.first = false;
  auto t = writer_->Append(s.batch, s.LogEpoch(b.epoch), b.unix_nanos);
  if (!t.ok()) return t.status();
  s.last_bus_epoch = b.epoch;
  if (s.observer) {
    // The commit record as the writer framed it (same fields, same log id).
    LogCommit c;
    c.epoch = s.LogEpoch(b.epoch);
    c.unix_nanos = b.unix_nanos;
    c.record_count = s.batch.record_count();
    c.page_id_high = writer_->page_id_high();
    s.group_bytes.assign(s.batch.bytes().begin(), s.batch.bytes().end());
    std::vector<std::uint8_t> payload;
    log::EncodeCommit(c, payload);
    log::AppendRecord(s.group_bytes, writer_->log_id(),
                      static_cast<std::uint8_t>(LogRecordType::kCommit), payload);
    LoggedGroup g;
    g.epoch = c.epoch;
    g.unix_nanos = c.unix_nanos;
    g.log_id = writer_->log_id();
    g.records = s.group_bytes;
    if (s.observer_hash) g.state_hash = s.LiveHash(b, c.page_id_high);
    MMSB_RETURN_IF_ERROR(s.observer->OnGroup(g));
  }
  if (writer_->options().durability == Durability::kSync) {
    // One fsync per commit, before the commit returns: wait here, under the commit lock.
    MMSB_RETURN_IF_ERROR(writer_->WaitDurable(*t));
  } else if (writer_->options().durability == Durability::kGroup) {
    s.tickets[b.epoch] = *t;
  }
  if (s.checkpoint_requested) {
    s.checkpoint_requested = false;
    CheckpointContents c;
    c.epoch = s.LogEpoch(b.epoch);
    c.unix_nanos = b.unix_nanos;
    c.page_id_high = writer_->page_id_high();
    for (const auto& [name, type] : s.types) c.types.push_back(type);
    for (const Page* p : b.live_pages) {
      c.pages.push_back({s.LogId(p->id()),
                         s.PageLogEpoch(p->id(), p->epoch()),
                         p->location(),
                         p->is_static(),
                         p->name(),
                         p->type() ? std::string_view(p->type()->name) : std::string_view(),
                         {p->data(), p->size()}});
    }
    std::sort(c.pages.begin(), c.pages.end(),
              [](const CheckpointPage& x, const CheckpointPage& y) { return x.id < y.id; });
    for (const auto& [key, e] : s.edges) c.edges.push_back(e);
    std::uint64_t page_bytes = 0;
    for (const CheckpointPage& p : c.pages) page_bytes += p.bytes.size();
    const std::uint64_t page_count = c.pages.size();
    auto path = WriteLogCheckpoint(*writer_, std::move(c));
    if (path.ok()) {
      s.checkpoint_result = s.LogEpoch(b.epoch);
      if (s.observer) s.observer->OnCheckpoint(s.LogEpoch(b.epoch), *path);
      Event ev;
      ev.type = EventType::kCheckpoint;
      ev.epoch = s.LogEpoch(b.epoch);
      ev.count = page_count;
      ev.bytes = page_bytes;
      if (writer_->options().log_events) {
        MMSB_RETURN_IF_ERROR(writer_->AppendEvent(ev.epoch, EncodeEvents({&ev, 1})));
      }
      ev.epoch = b.epoch;  // subscribers see bus epochs
      s.checkpoint_event = {ev};
    } else {
      s.checkpoint_result = path.status();
      return path.status();
    }
  }
  return Status::Ok();
}

std::vector<Event> LogSink::TakeEvents() {
  std::vector<Event> raised;
  std::lock_guard<std::mutex> l(state_->mu);
  raised.swap(state_->checkpoint_event);
  return raised;
}

Status LogSink::AfterCommit(Epoch epoch) {
  if (forked()) return ForkedError();
  CommitTicket t;
  bool wait = false;
  std::shared_ptr<LogGroupObserver> observer;
  Epoch log_epoch = 0;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    observer = state_->observer;
    log_epoch = state_->LogEpoch(epoch);
    auto it = state_->tickets.find(epoch);
    if (it != state_->tickets.end()) {
      t = it->second;
      wait = true;
      state_->tickets.erase(it);
    }
  }
  if (wait) MMSB_RETURN_IF_ERROR(writer_->WaitDurable(t));
  return observer ? observer->AfterGroup(log_epoch) : Status::Ok();
}

void LogSink::SetGroupObserver(std::shared_ptr<LogGroupObserver> observer, bool state_hash) {
  std::shared_ptr<LogGroupObserver> old;  // released after the lock: it may own this sink
  std::lock_guard<std::mutex> l(state_->mu);
  old = std::move(state_->observer);
  state_->observer = std::move(observer);
  state_->observer_hash = state_->observer != nullptr && state_hash;
  state_->tracker.Invalidate();  // commits in between were not tracked
  state_->tracked_pages.clear();
}

bool LogSink::wants_events() const { return writer_ && writer_->options().log_events; }

Status LogSink::AppendEvent(Epoch epoch, std::span<const std::uint8_t> bytes) {
  if (forked()) return ForkedError();
  State& s = *state_;
  std::lock_guard<std::mutex> l(s.mu);
  if (!s.first && epoch <= s.last_bus_epoch) {
    return writer_->AppendEvent(epoch > s.bus_base ? s.LogEpoch(epoch) : s.epoch_base, bytes);
  }
  // Its epoch's commit is not logged yet: it goes into that commit's group.
  s.pending_events.emplace_back(epoch, std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  return Status::Ok();
}

void LogSink::RequestCheckpoint() {
  std::lock_guard<std::mutex> l(state_->mu);
  state_->checkpoint_requested = true;
}

Expected<Epoch> LogSink::Checkpoint() {
  RequestCheckpoint();
  auto e = commit();
  if (!e.ok()) return e.status();
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->checkpoint_result;
}

Status LogSink::Flush() {
  if (!writer_ || forked()) return Status::Ok();
  MMSB_RETURN_IF_ERROR(writer_->Flush());
  if (writer_->options().durability == Durability::kNone) return Status::Ok();
  return writer_->Sync();
}

Status LogSink::Close() {
  // A closed log would fail every later commit: leave the bus first (NotFound when it was never
  // attached, or the bus stopped, is fine).
  if (started()) (void)RemoveSink(this);
  if (state_) SetGroupObserver(nullptr, false);  // an observer may hold this sink: break the cycle
  if (!writer_) return Status::Ok();
  if (forked()) {
    // The writer's buffered bytes, its lock and its I/O thread are the parent's: flushing them
    // here would append the parent's records a second time. Leave it untouched (and unfreed).
    [[maybe_unused]] LogWriter* parents = writer_.release();
    return Status::Ok();
  }
  return writer_->Close();
}

Expected<std::shared_ptr<LogSink>> AttachLog(const std::string& dir, const LogOptions& options) {
  auto sink = LogSink::Open(dir, options);
  if (!sink.ok()) return sink.status();
  MMSB_RETURN_IF_ERROR(AddSink(*sink));
  return sink;
}

}  // namespace mmsb
