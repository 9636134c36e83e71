// The plain build of the e2e harness: ground truth by snapshot diffs (see harness.h). Knows
// nothing of the runtime.
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"
#include "trace.h"

namespace e2e {
namespace {

struct Tracked {
  std::string name;
  const std::uint8_t* addr;
  std::size_t size;
  std::vector<std::uint8_t> snapshot;  // the bytes at the previous epoch; zeros at first
};

std::vector<Tracked> g_tracked;
std::vector<std::string> g_freed;
std::vector<CommitTrace> g_commits;
int g_transaction_depth = 0;

}  // namespace

void Track(const char* name, const void* addr, std::size_t size) {
  g_tracked.push_back({name, static_cast<const std::uint8_t*>(addr), size,
                       std::vector<std::uint8_t>(size, 0)});
}

void Untrack(const void* addr) {
  for (auto it = g_tracked.begin(); it != g_tracked.end(); ++it) {
    if (it->addr == addr) {
      g_freed.push_back(it->name);
      g_tracked.erase(it);
      return;
    }
  }
}

void EndEpoch() {
  CommitTrace t;
  for (Tracked& o : g_tracked) {
    PageChange c = DiffBytes(o.snapshot.data(), o.addr, o.size);
    if (!c.runs.empty()) t.changes[o.name] = std::move(c);
    std::memcpy(o.snapshot.data(), o.addr, o.size);
  }
  t.freed = std::move(g_freed);
  g_freed.clear();
  g_commits.push_back(std::move(t));
}

void ExpectEscaped(const void*) {}
void ExpectPageName(const void*, const char*) {}
void ExpectField(const char*, const char*, std::size_t, std::size_t, const char*,
                 std::initializer_list<std::uint32_t>, const char*) {}

int Finish() {
  PrintTrace(g_commits);
  return 0;
}

PlainTransaction::PlainTransaction() { ++g_transaction_depth; }
PlainTransaction::~PlainTransaction() {
  if (--g_transaction_depth == 0) EndEpoch();
}

}  // namespace e2e
