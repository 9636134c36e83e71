// Bus: the process-wide state bus behind mmsb::start/stop/commit and the page API.
//
// Owns the arena, the page records, the type registry, the commit stages and sinks, and stats.
// One mutex (mu_) serialises the registry and commit: creating or freeing a page waits while a
// commit runs, which is what makes "free during commit" safe. Barriers never take it. A commit
// first closes the transaction gate (tx_gate.h) under commit_mu_, then takes mu_; it reads live
// page memory while other threads store to it, under the protocol of docs/Runtime.md.
//
// Its methods live in one file per concern: page_registry.cc (records, slot cache, static region,
// types), commit_collector.cc (shadows, diff against twins, undo, verify), commit_events.cc (the
// event batch of a commit), bus_device.cc (device mirrors) and bus.cc (the commit pipeline).
//
// Thread-safety: every public method may be called from many threads.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mmsb/mirror.h"
#include "mmsb/mmsb.h"

#include "arena/arena.h"
#include "core/flat_id_map.h"
#include "core/mutex.h"
#include "core/page_record.h"
#include "device/committed_images.h"
#include "events/event_hub.h"
#include "graph/graph.h"

namespace mmsb {

class DeviceHub;  // device/device_hub.h

class Bus final : public CommittedImages {
 public:
  static Expected<std::unique_ptr<Bus>> Create(const Options& options);
  ~Bus();

  Expected<Page*> CreatePage(std::size_t size, const PageOptions& options) EXCLUDES(mu_);
  Expected<Page*> RegisterStatic(void* addr, std::size_t size, const PageOptions& options)
      EXCLUDES(mu_);
  Status FreePage(Page* page) EXCLUDES(mu_);
  Status FreePage(PageId id) EXCLUDES(mu_);
  Page* Find(PageId id) EXCLUDES(mu_);
  Page* FindByName(std::string_view name) EXCLUDES(mu_);
  // The live page whose storage contains `p`, or null.
  Page* FindContaining(const void* p) EXCLUDES(mu_);
  void MarkEscaped(Page* page) EXCLUDES(mu_);
  std::size_t PageCount() EXCLUDES(mu_);
  std::vector<PageInfo> ListPages() EXCLUDES(mu_);

  Expected<const TypeDescriptor*> RegisterType(const TypeDescriptor& type) EXCLUDES(mu_);
  const TypeDescriptor* FindType(std::string_view name) EXCLUDES(mu_);
  // Whether `type` is one of this bus's interned descriptors (a pointer kept across stop/start
  // is not).
  bool IsRegisteredType(const TypeDescriptor* type) EXCLUDES(mu_);
  bool IsRegisteredTypeLocked(const TypeDescriptor* type) const REQUIRES(mu_);

  // Commits, then delivers the commit's events (after releasing the commit lock).
  Expected<Epoch> Commit() EXCLUDES(mu_);
  // stop(): reports the misses still pending confirmation (no later commit will settle them).
  void SettleAtStop() EXCLUDES(mu_);
  // The process is exiting (api.cc's atexit handler): makes every sink durable now, and after
  // each later commit (from static destructors and atexit handlers that run after it).
  void AtExit() EXCLUDES(mu_);
  Epoch epoch() EXCLUDES(mu_);
  Stats GetStats() EXCLUDES(mu_);

  // Graph (mmsb/graph.h).
  Status AddEdge(PageId parent, PageId child, EdgeKind kind, Projection proj, EdgeOptions options)
      EXCLUDES(mu_);
  Status AddUserEdges(std::span<const PageId> parents, PageId child, RecomputeFn fn,
                      EdgeOptions options) EXCLUDES(mu_);
  Status RemoveEdge(PageId parent, PageId child) EXCLUDES(mu_);
  std::vector<EdgeInfo> ListEdges() EXCLUDES(mu_);
  int NodeHeight(PageId page) EXCLUDES(mu_);

  // Events (mmsb/events.h).
  EventHub& events() { return events_; }
  // Delivers a batch produced outside commit (e.g. a checkpoint), in order with commit batches.
  void PostEvents(std::vector<Event> batch) EXCLUDES(mu_);

  Status AddSink(std::shared_ptr<CommitSink> sink) EXCLUDES(mu_);
  Status RemoveSink(const CommitSink* sink) EXCLUDES(mu_);
  Status AddStage(std::shared_ptr<CommitStage> stage) EXCLUDES(mu_);
  Status RemoveStage(const CommitStage* stage) EXCLUDES(mu_);

  // Devices (bus_device.cc; mmsb/mirror.h). The hub lives under mu_.
  Status AttachDevice(std::shared_ptr<DeviceBackend> backend, const DeviceOptions& options)
      EXCLUDES(mu_);
  Status DetachDevice() EXCLUDES(mu_);
  DeviceBackend* AttachedDevice() EXCLUDES(mu_);
  // Runs fn(hub, page) under mu_ after checking that a device is attached and `page` is live.
  template <class R, class F>
  R WithDevice(const Page* page, F&& fn) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    if (Status s = CheckDevicePage(page); !s.ok()) return s;
    return fn(*device_);
  }
  DeviceStats GetDeviceStats() EXCLUDES(mu_);
  // A page's bytes at the last commit: its twin, or zeros before its first commit. The caller
  // holds mu_ (the device hooks and WithDevice do).
  std::span<const std::uint8_t> CommittedImage(const Page* p) const override
      NO_THREAD_SAFETY_ANALYSIS;
  // The static window: the program image's address range, granule-aligned ({0, 0} when it
  // cannot be found). Create reserves the arena next to it, so one shadow map covers both.
  static std::pair<std::uintptr_t, std::uintptr_t> StaticWindow();

 private:
  // Page::size_class_ of a page whose storage the device hub owns (unified pages).
  static constexpr std::uint8_t kExternalStorage = 0xfe;
  Status CheckDevicePage(const Page* page) REQUIRES(mu_);
  Expected<Page*> CreateUnifiedPage(std::size_t size, const PageOptions& options) EXCLUDES(mu_);
  // Creates the device copy of a new Gpu page (Unsupported without a device).
  Status AttachDeviceCopy(Page* p) REQUIRES(mu_);
  // The hub's pre-collection step of a commit (pull Gpu pages); OK without a device.
  Status DeviceBeforeCommit() REQUIRES(mu_);

  // Locks mu_ unless this thread is inside this bus's Commit(), which already holds it: stages
  // and sinks may call the read-only page API (FindPage, FindType, ListPages, ...).
  class SCOPED_CAPABILITY ReadLock {
   public:
    explicit ReadLock(Bus* bus) ACQUIRE(bus->mu_);
    ~ReadLock() RELEASE();
    ReadLock(const ReadLock&) = delete;
    ReadLock& operator=(const ReadLock&) = delete;

   private:
    Mutex* mu_ = nullptr;  // null when not locked here
  };

  explicit Bus(const Options& options) : options_(options), graph_(options.propagation_threads) {}
  // The registered sinks, in registration order. A published list is never changed: adding or
  // removing a sink (AddSink, RemoveSink, AttachDevice, DetachDevice) builds a new list under mu_
  // and swaps it in (PublishSinks).
  using SinkList = std::vector<std::shared_ptr<CommitSink>>;
  // Takes the lock and commits; `notify` receives the list of sinks whose OnCommit ran (null when
  // there were none): their AfterCommit must run (outside the lock) for the epoch stored in
  // `*committed`. `*seq` receives the commit's transaction-gate sequence number (tx_gate.h).
  Expected<Epoch> CommitLocked(std::shared_ptr<const SinkList>& notify, Epoch* committed,
                               std::uint64_t* seq) REQUIRES(commit_mu_) EXCLUDES(mu_);
  // Replaces the sink list by `next` (see sinks_).
  void PublishSinks(SinkList next) REQUIRES(mu_);
  bool EventsWanted() const REQUIRES(mu_);
  // Builds the commit's event batch into batch_events_ (see events.h for the order).
  void BuildEvents(Epoch e, std::uint64_t recomputed, std::uint64_t cutoffs, bool propagated)
      REQUIRES(mu_);
  // Builds and registers the record of a heap page on `block` (CreatePage's second half).
  Expected<Page*> AdoptBlock(const Arena::Block& block, std::size_t size,
                             const PageOptions& options) REQUIRES(mu_);
  // Returns a freed page's small-class storage to the slot cache or, when full, the arena.
  // `shadow_clear`: the caller knows the block's shadow holds no marks.
  void ReleaseSmallBlock(const Arena::Block& block, bool may_be_nonzero, bool shadow_clear)
      REQUIRES(mu_);
  // Returns storage CreatePage took but could not use.
  void GiveBackBlock(const Arena::Block& block) REQUIRES(mu_);
  PageRecord* NewRecord() REQUIRES(mu_);
  // A fresh record for a page on `data` (twin `twin`) at the current epoch: not static, not
  // escaped, no commit yet, storage that may hold anything, one large-class block of `size`.
  // Callers change what differs for their kind of page, then Register it.
  Page* InitRecord(std::uint8_t* data, std::uint8_t* twin, std::size_t size,
                   const PageOptions& options, Location location) REQUIRES(mu_);
  void Register(Page* p) REQUIRES(mu_);
  void Unregister(Page* p) REQUIRES(mu_);
  Status FreeLocked(Page* p) REQUIRES(mu_);
  // OK when [lo, hi) lies in the static window (rt::g_static_region), fixed at Create: a static
  // page registering mid-run (a function-local static) never moves a shadow that barriers on
  // other threads use. Pages outside it are tracked as escaped.
  Status CheckStaticWindow(std::uintptr_t lo, std::uintptr_t hi) const;
  std::uint8_t* ShadowFor(const Page* p) const REQUIRES(mu_);
  // Takes `p`'s marks clean, then diffs it against its twin (in full when `full`, escaped or
  // never committed; else its marked granules) and applies the result to the twin. For pages
  // derived by propagation: touches only the page's own state, so distinct pages may be diffed
  // concurrently (the graph's parallel recompute). `undo`, when set, receives the overwritten
  // twin bytes, restored with live memory on rollback.
  Delta TakeMarksAndDiff(Page* p, bool full, UndoLog* undo) const;
  // The graph's diff of a derived page (CommitServices::diff_now): as TakeMarksAndDiff, written
  // into `*out` (empty on entry, left empty when nothing changed). A committed pooled page of at
  // most kSmallDerivedBytes takes its marks, reads its bytes once into a snapshot, compares the
  // snapshot with the twin a whole granule at a time (the last granule's bytes past the page
  // masked off) and writes the delta in place, with no SIMD dispatch, builder or moved Delta
  // (docs/Performance.md, "The small derived page's diff").
  void DiffDerived(Page* p, bool full, UndoLog* undo, Delta* out) const;
  // DiffDerived's small-page path; `Granules` is the page's granule count when it is a constant
  // (1: a page of at most one granule, every loop straight-line), or 0 for any count up to
  // kSmallDerivedBytes / kGranuleSize.
  template <std::size_t Granules>
  void DiffSmallDerived(PageRecord* rec, bool full, UndoLog* undo,
                        Delta* out) const NO_THREAD_SAFETY_ANALYSIS;
  // The graph's discard of a derived page whose recompute failed (CommitServices::discard):
  // takes its marks, then restores its bytes from its twin (graph/graph.h, "Who writes a derived
  // page"). Whatever another thread stores meanwhile, live memory and the log stay in agreement.
  void DiscardDerived(Page* p) const;
  // Whether `p` carries barrier marks (relaxed loads): the debug check of
  // CommitServices::has_marks.
  bool HasMarks(const Page* p) const;
  static constexpr std::size_t kSmallDerivedBytes = 256;
  // The diff itself, once the marks are taken into `marks` (one byte per granule): reads live
  // memory once, and changes the twin only by the delta it returns.
  Delta DiffTaken(Page* p, const std::uint8_t* marks, bool whole, UndoLog* undo,
                  bool derived) const;
  // Granules [begin, end) of a page that sampled verification checks this commit (empty: none).
  struct SampleRange {
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  // Diffs one page into epoch_deltas_ (if changed), with undo tracking, and checks it against its
  // marks: in full in verify mode, else the granules of `sample` (sampled verification).
  void CollectPage(Page* p, Epoch new_epoch, SampleRange sample) REQUIRES(mu_);
  // Marks the granules of a partial check's slice for the diff (CollectPage).
  void SliceMarks(const Page* p, SampleRange sample, std::uint8_t* marks) REQUIRES(mu_);
  // Adds `p`'s delta `d` to the epoch's deltas and moves the page to `new_epoch`.
  void AddEpochDelta(Page* p, Delta&& d, Epoch new_epoch) REQUIRES(mu_);
  // Returns every page's twin changed in the open commit to its previous-epoch bytes and marks
  // those granules again; live memory of collected pages is left alone.
  void Rollback() REQUIRES(mu_);
  // `first_round`: the commit's collection of the program's writes (not a stage's round), where
  // sampled verification picks its slice.
  void CollectAll(Epoch new_epoch, bool first_round) REQUIRES(mu_);
  void FillBatch(CommitBatch& batch) REQUIRES(mu_);
  // Reports a verify miss of `p`: bytes [offset, offset + length) changed without a mark after
  // commit `after_epoch`'s cut and before commit `epoch`'s. `sampled`: found by sampling.
  void ReportMiss(const Page* p, ByteRun run, Epoch after_epoch, Epoch epoch, bool sampled)
      REQUIRES(mu_);
  // Settles the suspects of earlier commits (see suspects_): a granule whose mark has arrived
  // since was a store in flight; one still unmarked is a miss. `final`: the bus is stopping.
  void SettleSuspects(bool final) REQUIRES(mu_);
  const std::uint8_t* Zeros(std::size_t size) const;

  const Options options_;
  std::unique_ptr<Arena> arena_;
  std::uint8_t* zeros_ = nullptr;  // read-only zero mapping, arena-sized
  std::size_t zeros_size_ = 0;

  // Serialises commits, from closing the transaction gate to the last collection (outside mu_:
  // a transaction the commit waits for may need mu_ to create or free a page).
  Mutex commit_mu_ ACQUIRED_BEFORE(mu_);
  // The committing commit's transactions (its own note, then those that joined it): cleared and
  // refilled at each commit, so a commit allocates nothing for them once it has the capacity.
  std::vector<CommitProvenance> commit_transactions_ GUARDED_BY(commit_mu_);
  Mutex mu_;
  std::vector<std::unique_ptr<PageRecord[]>> record_chunks_ GUARDED_BY(mu_);
  std::vector<Page*> free_records_ GUARDED_BY(mu_);
  // Recently freed small slots, reused by CreatePage under the bus lock it takes anyway, so a
  // create/free cycle costs one lock instead of three (the arena has its own). Bounded per class;
  // the overflow goes back to the arena. Slots here have clear shadows and no owner.
  static constexpr std::size_t kSlotCacheMax = 64;
  // Prefetch distances (in pages) of the commit's scan over live pages.
  static constexpr std::size_t kCollectPrefetchRecords = 16;
  static constexpr std::size_t kCollectPrefetchShadows = 8;
  std::array<std::vector<Arena::Block>, Arena::kNumSmallClasses> slot_cache_ GUARDED_BY(mu_);
  std::vector<Page*> live_ GUARDED_BY(mu_);  // Page::slot_ is the index
  // What the commit's scan reads of each live page, by the same index: a page the last
  // collection found committed and tracked (`idle_ok`: twin valid, not escaped, a shadow) and
  // that has no mark and is not sampled is skipped without reading its record. Written by
  // CollectAll after each page it collects; a new slot starts false, MarkEscaped clears it, and
  // Unregister moves it with the page (docs/Performance.md, "The idle-page scan").
  struct ScanEntry {
    const std::uint8_t* shadow = nullptr;
    std::uint32_t granules = 0;
    bool idle_ok = false;
  };
  std::vector<ScanEntry> scan_ GUARDED_BY(mu_);
  FlatIdMap<Page*> by_id_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Page*> by_name_ GUARDED_BY(mu_);
  std::unordered_map<std::string, std::unique_ptr<TypeDescriptor>> types_ GUARDED_BY(mu_);
  PageId next_id_ GUARDED_BY(mu_) = 1;
  Epoch epoch_ GUARDED_BY(mu_) = 0;

  std::vector<std::shared_ptr<CommitStage>> stages_ GUARDED_BY(mu_);
  // Copy-on-write (SinkList): a commit holds the list that was current when it took mu_, one
  // reference for the whole list rather than one per sink and no copy of the vector, and calls
  // exactly those sinks, OnCommit under the lock and AfterCommit (and Flush after AtExit) outside
  // it. A sink removed while a commit that called its OnCommit is still running stays alive, by
  // that list, until the commit is done with it; a commit that takes mu_ after RemoveSink returned
  // never calls it, and one that takes it after AddSink returned calls the new sink.
  std::shared_ptr<const SinkList> sinks_ GUARDED_BY(mu_) = std::make_shared<const SinkList>();

  // Per-commit scratch, reused across commits.
  std::vector<PageCreatedRecord> created_ GUARDED_BY(mu_);  // id 0: cancelled (created and freed)
  std::size_t created_tombstones_ GUARDED_BY(mu_) = 0;
  std::vector<PageId> freed_ GUARDED_BY(mu_);
  // The open commit's deltas, in CommitBatch::deltas order: the collected pages', then those
  // propagation derived, then the commit stages'. What the sinks receive.
  std::vector<Delta> epoch_deltas_ GUARDED_BY(mu_);
  std::uint64_t epoch_delta_bytes_ GUARDED_BY(mu_) = 0;  // changed bytes of epoch_deltas_
  std::vector<VerifyMiss> misses_ GUARDED_BY(mu_);
  UndoLog undo_ GUARDED_BY(mu_);
  std::vector<std::uint8_t> marks_ GUARDED_BY(mu_);  // CollectPage's taken marks
  std::vector<ByteRun> missed_ GUARDED_BY(mu_);      // CollectPage's verify misses
  bool track_undo_ GUARDED_BY(mu_) = false;
  DependencyGraph graph_ GUARDED_BY(mu_);
  // Edge list handed to sinks, rebuilt only when the graph changed (graph_version_ moved).
  std::uint64_t graph_version_ GUARDED_BY(mu_) = 0;
  std::uint64_t edges_cache_version_ GUARDED_BY(mu_) = 0;
  std::vector<EdgeInfo> edges_cache_ GUARDED_BY(mu_);

  std::vector<Event> batch_events_ GUARDED_BY(mu_);
  std::unordered_map<PageId, std::size_t> changed_index_ GUARDED_BY(mu_);  // BuildEvents scratch
  EventHub events_;

  Stats stats_ GUARDED_BY(mu_);
  bool verify_ = false;
  std::atomic<bool> exiting_{false};  // AtExit() ran
  // Sampled verification: each page is checked in full at least once every sample_every_
  // commits (0: off); the slice of live_ checked next starts at sample_cursor_.
  std::uint32_t sample_every_ = 0;
  std::size_t sample_cursor_ GUARDED_BY(mu_) = 0;
  std::size_t sample_granule_ GUARDED_BY(mu_) = 0;  // where in live_[sample_cursor_]
  // Pages larger than this are sampled a granule range at a time (CollectAll).
  static constexpr std::size_t kSampleSplitBytes = std::size_t{256} << 10;
  // A commit's slice checks at most this many bytes, so its cost is bounded whatever the state's
  // size: every byte is checked within max(sample_every_, live bytes / this) commits (a 1 GiB
  // state: 64 commits, fidelity.sample_detect_commits' goal; docs/Runtime.md).
  static constexpr std::size_t kSampleMaxSliceBytes = std::size_t{16} << 20;
  std::vector<SampleRange> sample_ranges_ GUARDED_BY(mu_);  // this commit's, from sample_cursor_
  std::vector<std::uint8_t> sample_marks_ GUARDED_BY(mu_);  // a partial check's own marks
  std::vector<std::uint8_t> slice_present_[2] GUARDED_BY(mu_);  // SliceMarks' page-table reads
  // Bytes a check found changed in granules without a mark while another thread may have been
  // between a store and its mark (store-then-mark). Settled at the next commit: a miss if the
  // granule is still unmarked then (docs/Runtime.md, "Verify under threads").
  struct Suspect {
    PageId page = kInvalidPageId;
    ByteRun run;
    Epoch after_epoch = 0;
    Epoch epoch = 0;
    bool sampled = false;
  };
  std::vector<Suspect> suspects_ GUARDED_BY(mu_);

  // Declared last: destroyed first, releasing device copies and unified storage while the arena
  // and page records still exist.
  std::shared_ptr<CommitSink> device_sink_ GUARDED_BY(mu_);
  struct DeviceHubDeleter {
    void operator()(DeviceHub* hub) const;  // bus_device.cc: DeviceHub is incomplete here
  };
  std::unique_ptr<DeviceHub, DeviceHubDeleter> device_ GUARDED_BY(mu_);
};

// The started bus, or null. Set by start(), cleared by stop().
Bus* CurrentBus();

}  // namespace mmsb
