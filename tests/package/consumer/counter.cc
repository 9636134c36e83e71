// A user's program: a [[mmsb::page]] struct on the heap and a static page, changed in a
// transaction. It checks what MMSB recorded and exits non-zero if anything is off.
#include <cstdio>
#include <memory>

#include "mmsb/mmsb.h"

struct [[mmsb::page]] Counters {
  std::uint64_t hits[16];
  double mean;
};

[[mmsb::page]] Counters g_totals;

[[mmsb::transaction]] void Record(Counters& c, int bucket, double x) {
  c.hits[bucket] += 1;
  c.mean = (c.mean + x) / 2;
  g_totals.hits[bucket]++;
}

int main() {
  std::size_t delta_bytes = 0;
  (void)mmsb::Subscribe([&](std::span<const mmsb::Event> batch) {
    for (const mmsb::Event& e : batch) {
      if (e.type == mmsb::EventType::kCommitDone) delta_bytes += e.bytes;
    }
  });
  auto c = std::make_unique<Counters>();
  for (int i = 0; i < 10; ++i) Record(*c, i % 4, i);
  const mmsb::Stats s = mmsb::GetStats();
  std::printf("commits=%llu deltas=%llu delta_bytes=%zu verify_misses=%llu\n",
              (unsigned long long)s.commits, (unsigned long long)s.deltas, delta_bytes,
              (unsigned long long)s.verify_misses);
  if (s.commits != 10 || s.deltas < 10 || delta_bytes == 0 || s.verify_misses != 0) return 1;
  return g_totals.hits[0] == 3 && c->hits[1] == 3 ? 0 : 1;
}
