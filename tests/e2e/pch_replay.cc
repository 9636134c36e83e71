// A page type from a precompiled header (tests/e2e/pch_state.h, through CMake's
// target_precompile_headers and its system_header wrapper) is tracked: a heap page and a static
// page of it change in every epoch, each epoch is logged, and replaying the log to each epoch
// gives back the bytes the program held when that epoch committed. Verify mode is on.
// usage: e2e_pch_replay <scratch log directory>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "mmsb/mmsb.h"
#include "pch_state.h"

[[mmsb::page]] Ledger g_ledger;  // a static page of the PCH's type

namespace {

int g_failures = 0;

void Fail(const std::string& what) {
  std::fprintf(stderr, "pch_replay: %s\n", what.c_str());
  ++g_failures;
}

[[mmsb::transaction]] void Post(Ledger& l, int slot, std::int64_t amount) {
  l.balance[slot] += amount;
  l.posted++;
  if (amount < 0) std::memcpy(l.memo, "debit", 6);
}

std::vector<std::uint8_t> Bytes(const Ledger& l) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&l);
  return {p, p + sizeof(Ledger)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: e2e_pch_replay <scratch log directory>\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::remove_all(dir);
  auto log = mmsb::AttachLog(dir);
  if (!log.ok()) {
    Fail("cannot open the log: " + log.status().ToString());
    return 1;
  }
  auto* heap = new Ledger{};
  const mmsb::Page* heap_page = mmsb::PageOf(heap);
  const mmsb::Page* static_page = mmsb::PageOf(&g_ledger);
  if (heap_page == nullptr) Fail("'new Ledger' is not a page: the PCH's page type is untracked");
  if (static_page == nullptr) Fail("g_ledger is not a page");
  if (g_failures != 0) return 1;

  // Each committed epoch, with the bytes both pages held then.
  std::map<mmsb::Epoch, std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>> images;
  auto end_epoch = [&] {
    auto epoch = mmsb::commit();
    if (!epoch.ok()) return Fail("commit: " + epoch.status().ToString());
    images[*epoch] = {Bytes(*heap), Bytes(g_ledger)};
  };
  Open(*heap, 7);  // the PCH's own code
  Open(g_ledger, 9);
  end_epoch();
  for (int i = 0; i < 10; ++i) {
    Post(*heap, i % 6, 100 + i);  // commits at its exit
    images[mmsb::current_epoch()] = {Bytes(*heap), Bytes(g_ledger)};
    Post(g_ledger, (i * 5) % 6, i % 3 == 0 ? -i : i);
    images[mmsb::current_epoch()] = {Bytes(*heap), Bytes(g_ledger)};
  }
  heap->memo[39] = 0x5a;
  end_epoch();
  if (mmsb::Status s = (*log)->Close(); !s.ok()) Fail("close: " + s.ToString());

  for (const auto& [epoch, image] : images) {
    mmsb::ReplayOptions options;
    options.epoch = epoch;
    auto state = mmsb::Replay(dir, options);
    if (!state.ok()) {
      Fail("replay to epoch " + std::to_string(epoch) + ": " + state.status().ToString());
      continue;
    }
    const std::pair<const mmsb::Page*, const std::vector<std::uint8_t>*> pages[] = {
        {heap_page, &image.first}, {static_page, &image.second}};
    for (const auto& [page, bytes] : pages) {
      const mmsb::ReplayedPage* replayed = state->FindPage(page->id());
      if (replayed == nullptr) {
        Fail("epoch " + std::to_string(epoch) + ": page " + std::to_string(page->id()) +
             " is not in the log");
      } else if (replayed->bytes != *bytes) {
        Fail("epoch " + std::to_string(epoch) + ": the replayed bytes of page " +
             std::to_string(page->id()) + " differ from the program's");
      }
    }
  }
  const mmsb::Stats stats = mmsb::GetStats();
  if (stats.verify_misses != 0) Fail(std::to_string(stats.verify_misses) + " verify misses");
  if (g_failures != 0) return 1;
  std::printf("pch_replay: %zu epochs replayed bit for bit\n", images.size());
  delete heap;
  return 0;
}
