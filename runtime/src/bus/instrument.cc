// The ABI behind plugin-generated code (mmsb/instrument.h). Nothing here may throw or abort on
// user-visible failures: errors are printed and the program goes on, untracked where need be.
#include "mmsb/instrument.h"

#include <cstdio>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "mmsb/type_desc.h"

#include "bus/bus.h"
#include "bus/tx_gate.h"

namespace mmsb::rt {
namespace {

std::mutex g_start_mu;
thread_local int t_tx_depth = 0;
thread_local std::source_location t_tx_site;  // the outermost scope's

void Warn(const Status& s, const char* what) {
  std::fprintf(stderr, "mmsb: %s: %s\n", what, s.ToString().c_str());
}

}  // namespace

void EnsureStarted() noexcept {
  if (started()) return;
  std::lock_guard<std::mutex> lock(g_start_mu);
  if (started()) return;
  if (Status s = start(Options{}); !s.ok()) Warn(s, "cannot start the state bus");
}

void* AllocPageStorage(std::size_t size, std::size_t align, const TypeDescriptor* type) noexcept {
  EnsureStarted();
  if (align > kGranuleSize) {
    Warn(InvalidArgument("alignment above 64 bytes is not supported for page types"), "allocation");
    return nullptr;
  }
  PageOptions o;
  o.type = type;
  o.zeroed = false;  // the constructor initialises the object
  auto page = CreatePage(size, o);
  if (!page.ok()) {
    Warn(page.status(), "page allocation failed");
    return nullptr;
  }
  return (*page)->data();
}

void FreePageStorage(void* p) noexcept {
  if (p == nullptr) return;
  Bus* bus = CurrentBus();
  Page* page = bus ? bus->FindContaining(p) : nullptr;
  if (page == nullptr || page->data() != p) {
    std::fprintf(stderr, "mmsb: fatal: FreePageStorage(%p): not page storage\n", p);
    std::abort();
  }
  if (Status s = bus->FreePage(page); !s.ok()) Warn(s, "page free failed");
}

namespace {

// Addresses that escaped while no page held them: a static page whose registrar has not run yet
// (dynamic initialisation in another TU's order, or a constant initialiser's StaticEscape that
// runs before the page's registrar). RegisterStatic marks a page escaped when one lies in it.
// Kept for the program's life (a page registered again, on a bus started again, is escaped
// again); only addresses in the program image, where static pages live, and at most kMax.
struct PendingEscapes {
  static constexpr std::size_t kMax = 1 << 16;
  std::mutex mu;
  std::unordered_set<const void*> addrs;
  bool full_reported = false;
};
PendingEscapes& Pending() {
  static auto* p = new PendingEscapes;  // never destroyed: used by static destructors
  return *p;
}
bool InProgramImage(const void* p) {
  static const std::pair<std::uintptr_t, std::uintptr_t> kWindow = Bus::StaticWindow();
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return a >= kWindow.first && a < kWindow.second;
}
void RememberEscape(const void* p) {
  if (!InProgramImage(p)) return;
  PendingEscapes& pe = Pending();
  std::lock_guard<std::mutex> lock(pe.mu);
  if (pe.addrs.size() < PendingEscapes::kMax) {
    pe.addrs.insert(p);
  } else if (!pe.full_reported) {
    pe.full_reported = true;
    std::fprintf(stderr,
                 "mmsb: warning: over %zu escapes into static storage that no registered page "
                 "holds; a static page registered later may miss them\n",
                 PendingEscapes::kMax);
  }
}

}  // namespace

void RegisterStatic(void* addr, std::size_t size, const char* name,
                    const TypeDescriptor* type) noexcept {
  EnsureStarted();
  PageOptions o;
  o.type = type;
  o.name = name ? name : "";
  auto page = RegisterStaticPage(addr, size, o);
  if (!page.ok()) {
    Warn(page.status(), "static page left untracked");
    return;
  }
  const auto* lo = static_cast<const std::uint8_t*>(addr);
  PendingEscapes& pe = Pending();
  std::lock_guard<std::mutex> lock(pe.mu);
  for (const void* p : pe.addrs) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    if (b >= lo && b < lo + size) {
      MarkEscaped(*page);
      break;
    }
  }
}

void EscapeStatic(const void* addr) noexcept {
  RememberEscape(addr);  // also for a registration to come (a bus started again)
  MarkEscapedAt(addr);
}

const TypeDescriptor* InternType(const TypeDescriptor& type) noexcept {
  EnsureStarted();
  auto t = RegisterType(type);
  if (!t.ok()) {
    Warn(t.status(), "type descriptor rejected");
    return nullptr;
  }
  return *t;
}

static_assert(kind::kBytes == static_cast<std::uint8_t>(ScalarKind::kBytes) &&
                  kind::kBool == static_cast<std::uint8_t>(ScalarKind::kBool) &&
                  kind::kChar == static_cast<std::uint8_t>(ScalarKind::kChar) &&
                  kind::kI8 == static_cast<std::uint8_t>(ScalarKind::kI8) &&
                  kind::kU8 == static_cast<std::uint8_t>(ScalarKind::kU8) &&
                  kind::kI16 == static_cast<std::uint8_t>(ScalarKind::kI16) &&
                  kind::kU16 == static_cast<std::uint8_t>(ScalarKind::kU16) &&
                  kind::kI32 == static_cast<std::uint8_t>(ScalarKind::kI32) &&
                  kind::kU32 == static_cast<std::uint8_t>(ScalarKind::kU32) &&
                  kind::kI64 == static_cast<std::uint8_t>(ScalarKind::kI64) &&
                  kind::kU64 == static_cast<std::uint8_t>(ScalarKind::kU64) &&
                  kind::kF32 == static_cast<std::uint8_t>(ScalarKind::kF32) &&
                  kind::kF64 == static_cast<std::uint8_t>(ScalarKind::kF64) &&
                  kind::kPointer == static_cast<std::uint8_t>(ScalarKind::kPointer) &&
                  kind::kRecord == static_cast<std::uint8_t>(ScalarKind::kRecord),
              "instrument.h's layout kinds must be ScalarKind's values");

const TypeDescriptor* InternLayout(const char* name, std::uint32_t size, std::uint32_t align,
                                   std::initializer_list<LayoutField> fields) noexcept {
  TypeDescriptor t;
  t.name = name;
  t.size = size;
  t.align = align;
  t.fields.reserve(fields.size());
  for (const LayoutField& f : fields) {
    FieldDescriptor d;
    d.name = f.name;
    d.offset = f.offset;
    d.size = f.size;
    d.kind = f.kind <= kind::kRecord ? static_cast<ScalarKind>(f.kind) : ScalarKind::kBytes;
    d.elem_size = f.elem_size;
    d.extents.assign(f.extents.begin(), f.extents.end());
    d.record_type = f.record_type != nullptr ? f.record_type : "";
    t.fields.push_back(std::move(d));
  }
  return InternType(t);
}

void MarkEscapedAt(const void* p) noexcept {
  Bus* bus = IsTracked(p) ? CurrentBus() : nullptr;
  if (Page* page = bus != nullptr ? bus->FindContaining(p) : nullptr) {
    bus->MarkEscaped(page);
    return;
  }
  RememberEscape(p);  // a static page not registered yet, if any
}

void MarkToPageEnd(const void* p) noexcept {
  if (!IsTracked(p)) return;
  Bus* bus = CurrentBus();
  if (bus == nullptr) return;
  if (Page* page = bus->FindContaining(p)) {
    const std::size_t off =
        static_cast<std::size_t>(static_cast<const std::uint8_t*>(p) - page->data());
    MarkRange(p, page->size() - off);
  }
}

[[gnu::noinline]] TransactionScope::TransactionScope(std::source_location site) noexcept {
  // The outermost scope publishes the transaction, so no commit on another thread splits it, and
  // remembers its site for the commit record's provenance.
  if (t_tx_depth++ == 0) {
    t_tx_site = site;
    TxGate::Enter(__builtin_return_address(0));
  }
}

TransactionScope::~TransactionScope() {
  if (--t_tx_depth != 0) return;
  // The note is numbered now, so the commit record lists this transaction with the same site,
  // thread and sequence number whether it commits itself or joins another thread's commit.
  NoteCommitSite(CommitProvenance::Kind::kTransaction, t_tx_site);
  const CommitProvenance note = TakeCommitProvenance();
  // A commit waiting for this transaction takes its stores (and its note): wait for it instead
  // of committing.
  if (TxGate::Exit(note)) {
    TxGate::JoinPending();
    return;
  }
  if (!started()) return;
  RestoreCommitProvenance(note);
  auto e = commit();
  if (!e.ok()) Warn(e.status(), "commit at transaction exit failed");
}

}  // namespace mmsb::rt
