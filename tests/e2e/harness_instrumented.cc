// The instrumented build of the e2e harness: the runtime's committed deltas, captured by an
// in-process CommitSink, plus the checks only the runtime can answer (see harness.h). This file
// is compiled without the plugin.
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "mmsb/mmsb.h"
#include "trace.h"

namespace e2e {
namespace {

struct RecordedCommit {
  std::vector<mmsb::Delta> deltas;
  std::vector<mmsb::PageId> freed;
  std::vector<mmsb::VerifyMiss> misses;
};

class RecordingSink : public mmsb::CommitSink {
 public:
  const char* name() const override { return "e2e"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    RecordedCommit c;
    c.deltas.assign(batch.deltas.begin(), batch.deltas.end());
    c.freed.assign(batch.freed.begin(), batch.freed.end());
    c.misses.assign(batch.verify_misses.begin(), batch.verify_misses.end());
    commits.push_back(std::move(c));
    return mmsb::Status::Ok();
  }
  std::vector<RecordedCommit> commits;
};

struct FieldExpectation {
  std::string type, field, kind, record_type;
  std::size_t offset, size;
  std::vector<std::uint32_t> extents;
};

std::shared_ptr<RecordingSink> g_sink;
std::map<mmsb::PageId, std::string> g_names;     // every page ever tracked
std::map<const void*, mmsb::PageId> g_live;      // tracked pages by address
std::set<const void*> g_expect_escaped;
std::vector<std::pair<const void*, std::string>> g_expect_names;
std::vector<FieldExpectation> g_expect_fields;
std::vector<std::string> g_failures;

void Fail(std::string what) { g_failures.push_back(std::move(what)); }

void EnsureSink() {
  if (g_sink != nullptr) return;
  mmsb::rt::EnsureStarted();
  g_sink = std::make_shared<RecordingSink>();
  if (mmsb::Status s = mmsb::AddSink(g_sink); !s.ok()) Fail("AddSink: " + s.ToString());
}

// The page whose storage starts at `addr`, or kInvalidPageId.
mmsb::PageId PageAt(const void* addr) {
  for (const mmsb::PageInfo& info : mmsb::ListPages()) {
    const mmsb::Page* page = mmsb::FindPage(info.id);
    if (page != nullptr && page->data() == addr) return info.id;
  }
  return mmsb::kInvalidPageId;
}

std::string NameOf(mmsb::PageId id) {
  auto it = g_names.find(id);
  return it != g_names.end() ? it->second : "page#" + std::to_string(id);
}

void CheckField(const FieldExpectation& e) {
  const std::string what = e.type + "." + e.field;
  const mmsb::TypeDescriptor* t = mmsb::FindType(e.type);
  if (t == nullptr) return Fail("no layout descriptor registered for " + e.type);
  for (const mmsb::FieldDescriptor& f : t->fields) {
    if (f.name != e.field) continue;
    if (f.offset != e.offset || f.size != e.size) {
      return Fail(what + ": descriptor says offset " + std::to_string(f.offset) + " size " +
                  std::to_string(f.size) + ", the compiler " + std::to_string(e.offset) + " / " +
                  std::to_string(e.size));
    }
    if (mmsb::ScalarKindName(f.kind) != e.kind)
      return Fail(what + ": kind " + mmsb::ScalarKindName(f.kind) + ", expected " + e.kind);
    if (f.extents != e.extents) return Fail(what + ": array extents differ");
    if (f.record_type != e.record_type)
      return Fail(what + ": record type '" + f.record_type + "', expected '" + e.record_type + "'");
    return;
  }
  Fail(what + ": no such field in the registered descriptor");
}

}  // namespace

void Track(const char* name, const void* addr, std::size_t size) {
  EnsureSink();
  const mmsb::PageId id = PageAt(addr);
  if (id == mmsb::kInvalidPageId) return Fail(std::string(name) + " is not a page");
  if (mmsb::FindPage(id)->size() != size)
    Fail(std::string(name) + ": page size " + std::to_string(mmsb::FindPage(id)->size()) +
         ", object size " + std::to_string(size));
  g_names[id] = name;
  g_live[addr] = id;
}

void Untrack(const void* addr) { g_live.erase(addr); }

void EndEpoch() {
  EnsureSink();
  if (auto e = mmsb::commit(); !e.ok()) Fail("commit: " + e.status().ToString());
}

void ExpectEscaped(const void* addr) { g_expect_escaped.insert(addr); }

void ExpectPageName(const void* addr, const char* name) { g_expect_names.emplace_back(addr, name); }

void ExpectField(const char* type, const char* field, std::size_t offset, std::size_t size,
                 const char* kind, std::initializer_list<std::uint32_t> extents,
                 const char* record_type) {
  g_expect_fields.push_back({type, field, kind, record_type, offset, size, extents});
}

int Finish() {
  EnsureSink();
  std::vector<CommitTrace> traces;
  std::size_t misses = 0;
  for (const RecordedCommit& c : g_sink->commits) {
    CommitTrace t;
    for (const mmsb::Delta& d : c.deltas) {
      PageChange change;
      const auto bytes = d.bytes();
      std::size_t pos = 0;
      for (const mmsb::ByteRun& r : d.Runs()) {
        change.runs.emplace_back(r.offset, std::vector<std::uint8_t>(bytes.begin() + pos,
                                                                     bytes.begin() + pos + r.length));
        pos += r.length;
      }
      t.changes[NameOf(d.page())] = std::move(change);
    }
    for (mmsb::PageId id : c.freed) t.freed.push_back(NameOf(id));
    for (const mmsb::VerifyMiss& m : c.misses) {
      ++misses;
      Fail("verify miss: " + NameOf(m.page) + " +" + std::to_string(m.offset) + " (" +
           std::to_string(m.length) + " bytes) " + m.field);
    }
    traces.push_back(std::move(t));
  }
  PrintTrace(traces);

  const mmsb::Stats stats = mmsb::GetStats();
  if (stats.verify_commits != stats.commits || stats.commits == 0)
    Fail("verify mode was not on for every commit (run with MMSB_VERIFY=1)");
  if (stats.verify_misses != 0 && misses == 0) Fail("the runtime counted verify misses");
  for (const auto& [addr, id] : g_live) {
    const mmsb::Page* page = mmsb::FindPage(id);
    if (page == nullptr) {
      Fail(NameOf(id) + " was freed but not untracked");
      continue;
    }
    // Every page carries its layout, registered once: the descriptor is the interned one.
    const mmsb::TypeDescriptor* type = page->type();
    if (type == nullptr) {
      Fail(NameOf(id) + " has no layout descriptor");
    } else if (mmsb::FindType(type->name) != type) {
      Fail(NameOf(id) + ": its descriptor '" + type->name + "' is not the registered one");
    }
    const bool want = g_expect_escaped.count(addr) != 0;
    if (page->escaped() != want)
      Fail(NameOf(id) + (want ? " is not escaped" : " is escaped: verify mode cannot check it"));
  }
  for (const auto& [addr, name] : g_expect_names) {
    auto it = g_live.find(addr);
    const mmsb::Page* page = it != g_live.end() ? mmsb::FindPage(it->second) : nullptr;
    if (page == nullptr || page->name() != name)
      Fail("static page '" + name + "' is registered as '" + (page ? page->name() : "?") + "'");
  }
  for (const FieldExpectation& e : g_expect_fields) CheckField(e);

  std::fprintf(stderr, "e2e: %zu commits, %llu deltas, %llu verify misses, %llu pages escaped\n",
               g_sink->commits.size(), static_cast<unsigned long long>(stats.deltas),
               static_cast<unsigned long long>(stats.verify_misses),
               static_cast<unsigned long long>(stats.pages_escaped));
  for (const std::string& f : g_failures) std::fprintf(stderr, "e2e: FAILED: %s\n", f.c_str());
  return g_failures.empty() ? 0 : 1;
}

}  // namespace e2e
