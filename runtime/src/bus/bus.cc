#include "bus/bus.h"

#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "bus/shadow_scan.h"
#include "bus/tx_gate.h"
#include "core/clock.h"
#include "delta/delta_internal.h"
#include "device/device_hub.h"

namespace mmsb {
namespace {

// The bus whose Commit() runs on this thread, if any.
thread_local const Bus* t_committing = nullptr;

struct CommittingScope {
  explicit CommittingScope(const Bus* bus) { t_committing = bus; }
  ~CommittingScope() { t_committing = nullptr; }
};

}  // namespace

Bus::ReadLock::ReadLock(Bus* bus) NO_THREAD_SAFETY_ANALYSIS {
  if (t_committing != bus) {
    mu_ = &bus->mu_;
    mu_->Lock();
  }
}

Bus::ReadLock::~ReadLock() NO_THREAD_SAFETY_ANALYSIS {
  if (mu_ != nullptr) mu_->Unlock();
}

Expected<std::unique_ptr<Bus>> Bus::Create(const Options& options) {
  std::unique_ptr<Bus> bus(new Bus(options));
  auto capacity = Arena::CapacityFromEnv(options.arena_bytes);  // MMSB_ARENA_BYTES
  if (!capacity.ok()) return capacity.status();
  // The arena goes next to the program image, so that one shadow map and one range check in the
  // barrier (rt::g_region) cover heap and static pages alike.
  const auto [image_lo, image_hi] = StaticWindow();
  auto arena = Arena::Create(*capacity, {image_lo, image_hi});
  if (!arena.ok()) return arena.status();
  bus->arena_.reset(*arena);
  bus->zeros_size_ = bus->arena_->capacity();
  void* z = mmap(nullptr, bus->zeros_size_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (z == MAP_FAILED) return OutOfMemory("cannot reserve the zero image mapping");
  bus->zeros_ = static_cast<std::uint8_t*>(z);
  const char* env = std::getenv("MMSB_VERIFY");
  bus->verify_ = options.verify || (env != nullptr && env[0] != '\0' && env[0] != '0');
  int sample = options.sample_verify;
  if (sample < 0) {
    sample = Options::kDefaultSampleVerify;
    if (const char* s = std::getenv("MMSB_SAMPLE_VERIFY"); s != nullptr && s[0] != '\0') {
      char* end = nullptr;
      const long v = std::strtol(s, &end, 10);
      if (end == s || *end != '\0' || v < 0 || v > (1L << 30)) {
        return InvalidArgument(fmt::format(
            "MMSB_SAMPLE_VERIFY='{}': expected a number of commits N >= 0 (every page is checked "
            "in full at least once every N commits; 0 turns sampled verification off)",
            s));
      }
      sample = static_cast<int>(v);
    }
  }
  bus->sample_every_ = static_cast<std::uint32_t>(sample);
  const Arena& a = *bus->arena_;
  if (a.covers_near()) {
    rt::PublishRegion(rt::g_static_region,
                      {image_lo, image_hi - image_lo,
                       a.cover_shadow() + ((image_lo - a.cover_base()) >> kGranuleShift)});
  } else {
    // Static pages are then tracked as escaped: still exact, fully diffed at every commit.
    rt::PublishRegion(rt::g_static_region, {});
    std::fprintf(stderr, "mmsb: warning: %s\n",
                 image_hi > image_lo
                     ? "cannot reserve the page arena next to the program image: static pages "
                       "are diffed in full at every commit"
                     : "cannot find the program image: static pages are diffed in full at every "
                       "commit");
  }
  rt::PublishRegion(rt::g_region, {a.cover_base(), a.cover_span(), a.cover_shadow()});
  return bus;
}

namespace {

// The address range of the program's loaded image (its PT_LOAD segments): where the `mmsb_pages`
// section of the executable, and so every static page it defines, lies.
int ImageRange(struct dl_phdr_info* info, std::size_t, void* data) {
  auto* range = static_cast<std::pair<std::uintptr_t, std::uintptr_t>*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    range->first = std::min(range->first, lo);
    range->second = std::max(range->second, lo + ph.p_memsz);
  }
  return 1;  // the first object is the program itself
}

}  // namespace

std::pair<std::uintptr_t, std::uintptr_t> Bus::StaticWindow() {
  std::pair<std::uintptr_t, std::uintptr_t> range{~std::uintptr_t{0}, 0};
  dl_iterate_phdr(ImageRange, &range);
  if (range.second <= range.first) return {0, 0};
  const std::uintptr_t lo = range.first & ~std::uintptr_t{kGranuleSize - 1};
  const std::uintptr_t hi = (range.second + kGranuleSize - 1) & ~std::uintptr_t{kGranuleSize - 1};
  return {lo, hi};
}

Bus::~Bus() NO_THREAD_SAFETY_ANALYSIS {
  // Arena storage goes with the arena; only static twins are separately owned.
  for (Page* p : live_) {
    if (Rec(p)->is_static_) delete[] Rec(p)->twin;
  }
  if (zeros_) munmap(zeros_, zeros_size_);
}

const std::uint8_t* Bus::Zeros(std::size_t size) const {
  MMSB_CHECK(size <= zeros_size_);
  return zeros_;
}

void Bus::FillBatch(CommitBatch& batch) {
  if (created_tombstones_ != 0) {
    std::erase_if(created_, [](const PageCreatedRecord& r) { return r.id == kInvalidPageId; });
    created_tombstones_ = 0;
    // Slots moved: pages created this epoch find their record again through the id check.
    for (std::size_t i = 0; i < created_.size(); ++i) {
      if (Page** p = by_id_.Find(created_[i].id))
        Rec(*p)->created_slot = static_cast<std::uint32_t>(i);
    }
  }
  batch.created = created_;
  batch.freed = freed_;
  batch.deltas = epoch_deltas_;
  batch.verify_misses = misses_;
  batch.live_pages = live_;
  if (edges_cache_version_ != graph_version_) {
    edges_cache_ = graph_.ListEdges();
    edges_cache_version_ = graph_version_;
  }
  batch.edges = edges_cache_;
  batch.graph_version = graph_version_;
  batch.find_type = [this](std::string_view n) NO_THREAD_SAFETY_ANALYSIS -> const TypeDescriptor* {
    auto it = types_.find(std::string(n));
    return it == types_.end() ? nullptr : it->second.get();
  };
}

Expected<Epoch> Bus::Commit() {
  if (TxGate::InTransaction()) {
    // The commit would wait for this very transaction (see tx_gate.h).
    return FailedPrecondition(
        "commit() inside a transaction: a transaction commits when its outermost scope exits "
        "([[mmsb::transaction]] function or TransactionScope), so its stores share one epoch");
  }
  std::shared_ptr<const SinkList> notify;
  Epoch committed = 0;
  std::uint64_t seq = 0;
  Expected<Epoch> r = [&] {
    MutexLock serial(&commit_mu_);
    return CommitLocked(notify, &committed, &seq);
  }();
  // Outside the lock, so a durable sink's wait lets the next commit join its group; events are
  // delivered once the commit is as durable as the sinks make it.
  static const SinkList kNoSinks;
  const SinkList& called = notify ? *notify : kNoSinks;
  for (const auto& sink : called) {
    Status s = sink->AfterCommit(committed);
    if (!s.ok() && r.ok()) r = s.WithContext(fmt::format("commit sink '{}'", sink->name()));
    if (std::vector<Event> raised = sink->TakeEvents(); !raised.empty()) {
      PostEvents(std::move(raised));
    }
  }
  events_.Drain();
  if (exiting_.load(std::memory_order_acquire)) {
    // After the exit handler nothing else will flush: this commit is the last word until the
    // next one.
    for (const auto& sink : called) {
      Status s = sink->Flush();
      if (!s.ok() && r.ok()) r = s.WithContext(fmt::format("commit sink '{}'", sink->name()));
    }
  }
  // Transactions that ended while this commit waited for them return now, as after a commit of
  // their own.
  TxGate::Finish(seq);
  return r;
}

Expected<Epoch> Bus::CommitLocked(std::shared_ptr<const SinkList>& notify, Epoch* committed,
                                  std::uint64_t* seq) {
  const std::uint64_t t0 = MonotonicNanos();
  // The cut waits for the transactions running now, before the bus lock: they may create or free
  // pages, which takes that lock.
  const std::uint64_t watchdog_reports = TxGate::Close(seq);
  // Reopened once every page is collected (below), or on any early return.
  // On a failed commit the joined transactions' notes are dropped (their stores stay pending for
  // the next commit, which does not name them).
  struct GateGuard {
    bool open = false;
    void Open(std::vector<CommitProvenance>* joined) {
      if (!open) TxGate::Open(joined);
      open = true;
    }
    ~GateGuard() { Open(nullptr); }
  } gate;
  MutexLock lock(&mu_);
  CommittingScope committing(this);
  stats_.tx_watchdog_reports += watchdog_reports;
  // Device writes to Gpu pages become host writes first; a conflict fails here, nothing changed.
  if (Status s = DeviceBeforeCommit(); !s.ok()) {
    ++stats_.failed_commits;
    return s;
  }
  const Epoch e = epoch_ + 1;
  epoch_deltas_.clear();
  epoch_delta_bytes_ = 0;
  misses_.clear();
  undo_.Clear();
  // Undo images are only needed when something after collection can fail the commit.
  track_undo_ = !graph_.empty() || !stages_.empty();
  // Misses suspected by the previous commit are settled before this one takes any mark.
  SettleSuspects(/*final=*/false);
  CollectAll(e, /*first_round=*/true);

  Status failure;
  bool propagated = false;
  std::uint64_t recomputed_before = 0, cutoffs_before = 0;
  // Propagation appends its deltas after the collected ones.
  const std::size_t derived_begin = epoch_deltas_.size();
  if (!graph_.empty()) {
    DependencyGraph::CommitServices host;
    host.diff_now = [](const void* bus, Page* p, bool full, UndoLog* undo, Delta* out) {
      static_cast<const Bus*>(bus)->DiffDerived(p, full, undo, out);
    };
    host.diff_host = this;
    host.undo = track_undo_ ? &undo_ : nullptr;
    // A derived page's recompute failed: its bytes are the runtime's own writes, put back.
    host.discard = [this](Page* p) { DiscardDerived(p); };
#ifndef NDEBUG
    host.has_marks = [](const void* bus, const Page* p) {
      return static_cast<const Bus*>(bus)->HasMarks(p);
    };
#endif
    host.out = &epoch_deltas_;
    const std::uint64_t props_before = graph_.stats().propagations;
    recomputed_before = graph_.stats().nodes_recomputed;
    cutoffs_before = graph_.stats().cutoffs;
    failure = graph_.Propagate(e, host);
    if (failure.ok()) epoch_delta_bytes_ += graph_.derived_bytes();
    propagated = graph_.stats().propagations != props_before;
  }

  CommitBatch batch;
  batch.epoch = e;
  batch.unix_nanos = UnixNanos();
  // This thread's own note first; the notes of transactions that joined are added when the gate
  // reopens (below), before any sink sees the batch.
  std::vector<CommitProvenance>& transactions = commit_transactions_;
  transactions.clear();
  transactions.push_back(rt::TakeCommitProvenance());
  batch.transactions = transactions;
  FillBatch(batch);
  batch.derived_begin = derived_begin;
  batch.derived_end = epoch_deltas_.size();
  for (const auto& stage : stages_) {
    if (!failure.ok()) break;
    Status s = stage->Process(batch);
    if (!s.ok()) {
      failure = s.WithContext(fmt::format("commit stage '{}'", stage->name()));
      break;
    }
    // The stage's own writes become deltas of the same epoch.
    CollectAll(e, /*first_round=*/false);
    FillBatch(batch);
  }
  if (!failure.ok()) {
    // Nothing is committed: twins (and derived pages) return to the previous epoch, the
    // program's own writes stay pending for the next commit, as do created/freed pages.
    Rollback();
    ++stats_.failed_commits;
    return failure;
  }
  // Every page is collected: the cut is complete, and transactions may run during the sinks.
  gate.Open(&transactions);
  batch.transactions = transactions;
  const bool want_events = EventsWanted();
  if (want_events) {
    BuildEvents(e, graph_.stats().nodes_recomputed - recomputed_before,
                graph_.stats().cutoffs - cutoffs_before, propagated);
    batch.events = batch_events_;
  }
  Status sink_failure;
  if (!sinks_->empty()) notify = sinks_;
  *committed = e;
  for (const auto& sink : *sinks_) {
    Status s = sink->OnCommit(batch);
    if (!s.ok()) {
      ++stats_.sink_errors;
      if (sink_failure.ok())
        sink_failure = s.WithContext(fmt::format("commit sink '{}'", sink->name()));
    }
  }
  epoch_ = e;
  created_.clear();
  created_tombstones_ = 0;
  freed_.clear();
  undo_.Clear();
  ++stats_.commits;
  stats_.epoch = e;
  // Counted as the deltas were made, while they were in cache (a pass here would re-read them).
  stats_.deltas += epoch_deltas_.size();
  stats_.delta_bytes += epoch_delta_bytes_;
  if (verify_) ++stats_.verify_commits;
  stats_.commit_latency.Record(MonotonicNanos() - t0);
  if (want_events) events_.Enqueue(std::move(batch_events_));
  batch_events_.clear();
  if (!sink_failure.ok()) return sink_failure;
  return e;
}

void Bus::AtExit() {
  exiting_.store(true, std::memory_order_release);
  std::shared_ptr<const SinkList> sinks;
  {
    MutexLock lock(&mu_);
    sinks = sinks_;
  }
  for (const auto& sink : *sinks) {
    if (Status s = sink->Flush(); !s.ok()) {
      std::fprintf(stderr, "mmsb: at exit: commit sink '%s': %s\n", sink->name(),
                   s.ToString().c_str());
    }
  }
}

Epoch Bus::epoch() {
  MutexLock lock(&mu_);
  return epoch_;
}

Stats Bus::GetStats() {
  MutexLock lock(&mu_);
  Stats s = stats_;
  const PropagationStats& g = graph_.stats();
  s.propagations = g.propagations;
  s.nodes_recomputed = g.nodes_recomputed;
  s.cutoffs = g.cutoffs;
  s.parallel_batches = g.parallel_batches;
  s.graph_depth = g.graph_depth;
  s.graph_nodes = g.nodes;
  s.graph_edges = g.edges;
  s.propagation_latency = graph_.latency();
  s.gpu_bytes = device_ != nullptr ? device_->device_bytes() : 0;
  return s;
}

Status Bus::AddEdge(PageId parent, PageId child, EdgeKind kind, Projection proj,
                    EdgeOptions options) {
  MutexLock lock(&mu_);
  Page** p = by_id_.Find(parent);
  if (p == nullptr) return NotFound(fmt::format("edge parent: no live page with id {}", parent));
  Page** c = by_id_.Find(child);
  if (c == nullptr) return NotFound(fmt::format("edge child: no live page with id {}", child));
  ++graph_version_;
  return graph_.AddEdge(*p, *c, kind, proj, options);
}

Status Bus::AddUserEdges(std::span<const PageId> parents, PageId child, RecomputeFn fn,
                         EdgeOptions options) {
  MutexLock lock(&mu_);
  Page** c = by_id_.Find(child);
  if (c == nullptr) return NotFound(fmt::format("edge child: no live page with id {}", child));
  std::vector<Page*> ps;
  for (PageId id : parents) {
    Page** p = by_id_.Find(id);
    if (p == nullptr) return NotFound(fmt::format("edge parent: no live page with id {}", id));
    ps.push_back(*p);
  }
  ++graph_version_;
  return graph_.SetUserFunction(*c, ps, std::move(fn), options);
}

Status Bus::RemoveEdge(PageId parent, PageId child) {
  MutexLock lock(&mu_);
  ++graph_version_;
  return graph_.RemoveEdge(parent, child);
}

std::vector<EdgeInfo> Bus::ListEdges() {
  ReadLock lock(this);
  return graph_.ListEdges();
}

int Bus::NodeHeight(PageId page) {
  ReadLock lock(this);
  return graph_.Height(page);
}

Status Bus::AddSink(std::shared_ptr<CommitSink> sink) {
  if (!sink) return InvalidArgument("null sink");
  MutexLock lock(&mu_);
  SinkList next = *sinks_;
  next.push_back(std::move(sink));
  PublishSinks(std::move(next));
  return Status::Ok();
}

Status Bus::RemoveSink(const CommitSink* sink) {
  MutexLock lock(&mu_);
  SinkList next = *sinks_;
  auto it = std::find_if(next.begin(), next.end(), [&](const auto& s) { return s.get() == sink; });
  if (it == next.end()) return NotFound("sink is not registered");
  next.erase(it);
  PublishSinks(std::move(next));
  return Status::Ok();
}

void Bus::PublishSinks(SinkList next) {
  // A commit that holds the old list keeps it, and its sinks, alive until it is done.
  sinks_ = std::make_shared<const SinkList>(std::move(next));
}

Status Bus::AddStage(std::shared_ptr<CommitStage> stage) {
  if (!stage) return InvalidArgument("null stage");
  MutexLock lock(&mu_);
  stages_.push_back(std::move(stage));
  return Status::Ok();
}

Status Bus::RemoveStage(const CommitStage* stage) {
  MutexLock lock(&mu_);
  auto it =
      std::find_if(stages_.begin(), stages_.end(), [&](const auto& s) { return s.get() == stage; });
  if (it == stages_.end()) return NotFound("stage is not registered");
  stages_.erase(it);
  return Status::Ok();
}

}  // namespace mmsb
