// The free-function public API (mmsb.h, page.h, commit.h): thin forwarding to the current Bus.
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "bus/bus.h"

namespace mmsb {
namespace {

// Never destroyed at exit (as LevelDB's NoDestructor singletons): a static destructor or atexit
// handler of any translation unit, in any link order, may still store to pages and commit.
// stop() deletes it; exit leaves it to the OS after AtExit() made the sinks durable.
Bus* g_bus_owner = nullptr;
std::atomic<Bus*> g_bus{nullptr};

// Registered once, by the first start(): runs at exit() in reverse order of registration with the
// static destructors, so some of those run before it (their commits are flushed here) and some
// after (each of their commits flushes the sinks itself, Bus::AtExit).
void AtExit() {
  if (Bus* bus = g_bus.load(std::memory_order_acquire)) bus->AtExit();
}

Status NotStarted() {
  return FailedPrecondition("the MMSB bus is not started (call mmsb::start() first)");
}

}  // namespace

Bus* CurrentBus() { return g_bus.load(std::memory_order_acquire); }

PageInfo Page::Info() const {
  return {id_, size_, epoch_, location_, type_, name_, is_static_, escaped_};
}

Status start(const Options& options) {
  if (CurrentBus() != nullptr) return FailedPrecondition("the MMSB bus is already started");
  auto bus = Bus::Create(options);
  if (!bus.ok()) return bus.status();
  static std::atomic<bool> at_exit_registered{false};
  if (!at_exit_registered.exchange(true)) std::atexit(AtExit);
  g_bus_owner = bus->release();
  g_bus.store(g_bus_owner, std::memory_order_release);
  return Status::Ok();
}

void stop() {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return;
  bus->SettleAtStop();
  rt::PublishRegion(rt::g_region, {});
  rt::PublishRegion(rt::g_static_region, {});
  g_bus.store(nullptr, std::memory_order_release);
  delete g_bus_owner;
  g_bus_owner = nullptr;
}

bool started() { return CurrentBus() != nullptr; }

Expected<Epoch> commit(std::source_location site) {
  rt::NoteCommitSite(CommitProvenance::Kind::kCommitCall, site);
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->Commit();
}

std::span<const std::uint8_t> CommittedImage(const Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr || page == nullptr) return {};
  return bus->CommittedImage(page);
}

Epoch current_epoch() {
  Bus* bus = CurrentBus();
  return bus ? bus->epoch() : 0;
}

Stats GetStats() {
  Bus* bus = CurrentBus();
  return bus ? bus->GetStats() : Stats{};
}

Expected<Page*> CreatePage(std::size_t size, const PageOptions& options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->CreatePage(size, options);
}

Expected<Page*> RegisterStaticPage(void* addr, std::size_t size, const PageOptions& options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->RegisterStatic(addr, size, options);
}

Status FreePage(Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->FreePage(page);
}

Status FreePage(PageId id) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->FreePage(id);
}

Page* FindPage(PageId id) {
  Bus* bus = CurrentBus();
  return bus ? bus->Find(id) : nullptr;
}

Expected<Page*> GetPage(PageId id) {
  Page* p = FindPage(id);
  if (p == nullptr) return NotFound("no live page with id " + std::to_string(id));
  return p;
}

Page* FindPageByName(std::string_view name) {
  Bus* bus = CurrentBus();
  return bus ? bus->FindByName(name) : nullptr;
}

void MarkEscaped(Page* page) {
  if (Bus* bus = CurrentBus()) bus->MarkEscaped(page);
}

std::size_t PageCount() {
  Bus* bus = CurrentBus();
  return bus ? bus->PageCount() : 0;
}

Page* PageOf(const void* p) {
  Bus* bus = CurrentBus();
  return bus ? bus->FindContaining(p) : nullptr;
}

std::vector<PageInfo> ListPages() {
  Bus* bus = CurrentBus();
  return bus ? bus->ListPages() : std::vector<PageInfo>{};
}

Expected<const TypeDescriptor*> RegisterType(const TypeDescriptor& type) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->RegisterType(type);
}

const TypeDescriptor* FindType(std::string_view name) {
  Bus* bus = CurrentBus();
  return bus ? bus->FindType(name) : nullptr;
}

Status AddPassthroughEdge(PageId parent, PageId child, EdgeOptions options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AddEdge(parent, child, EdgeKind::kPassthrough, {}, options);
}

Status AddProjectionEdge(PageId parent, PageId child, Projection projection, EdgeOptions options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AddEdge(parent, child, EdgeKind::kProjection, projection, options);
}

Status AddUserEdges(std::span<const PageId> parents, PageId child, RecomputeFn fn,
                    EdgeOptions options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AddUserEdges(parents, child, std::move(fn), options);
}

Status RemoveEdge(PageId parent, PageId child) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->RemoveEdge(parent, child);
}

std::vector<EdgeInfo> ListEdges() {
  Bus* bus = CurrentBus();
  return bus ? bus->ListEdges() : std::vector<EdgeInfo>{};
}

int NodeHeight(PageId page) {
  Bus* bus = CurrentBus();
  return bus ? bus->NodeHeight(page) : -1;
}

Status AddSink(std::shared_ptr<CommitSink> sink) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AddSink(std::move(sink));
}

Status RemoveSink(const CommitSink* sink) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->RemoveSink(sink);
}

Status AddStage(std::shared_ptr<CommitStage> stage) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AddStage(std::move(stage));
}

Status RemoveStage(const CommitStage* stage) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->RemoveStage(stage);
}

}  // namespace mmsb

namespace mmsb {

Expected<SubscriptionId> Subscribe(EventBatchHandler handler, EventMask types) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  if (!handler) return InvalidArgument("null event handler");
  return bus->events().Subscribe(std::move(handler), nullptr, types);
}

Expected<SubscriptionId> SubscribeEach(EventHandler handler, EventMask types) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  if (!handler) return InvalidArgument("null event handler");
  return bus->events().Subscribe(nullptr, std::move(handler), types);
}

Status Unsubscribe(SubscriptionId id) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->events().Unsubscribe(id);
}

}  // namespace mmsb
