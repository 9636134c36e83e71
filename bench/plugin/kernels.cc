// Kernels on pages for plugin.runtime_overhead (kernels.h), compiled with the MMSB plugin and
// without it; MMSB_BENCH_VARIANT names the namespace of each copy. Each kernel is written as a
// user would write it, with no regard for the plugin:
//   HashRound  inserts and updates keys in an open-addressing hash map (linear probing);
//   SortRound  refills an array with pseudo-random values and std::sorts it;
//   BfsRound   a breadth-first traversal of a fixed graph (CSR) from a new source each round,
//              writing the distances and the queue into the page.
#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace MMSB_BENCH_VARIANT {

struct [[mmsb::page]] Kernels {
  std::uint64_t keys[kHashSlots];  // 0: an empty slot
  std::uint64_t values[kHashSlots];
  std::uint32_t size;
  std::int32_t sorted[kSortLength];
  std::int32_t offsets[kGraphNodes + 1];
  std::int32_t edges[kGraphNodes * kGraphDegree];
  std::int32_t dist[kGraphNodes];
  std::int32_t queue[kGraphNodes];
};

namespace {
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

Kernels* CreateKernels() {
  auto* k = new Kernels();
  for (int n = 0; n < kGraphNodes; ++n) {
    k->offsets[n] = n * kGraphDegree;
    for (int e = 0; e < kGraphDegree; ++e)
      k->edges[n * kGraphDegree + e] =
          static_cast<std::int32_t>(Mix(static_cast<std::uint64_t>(n * kGraphDegree + e)) %
                                    kGraphNodes);
  }
  k->offsets[kGraphNodes] = kGraphNodes * kGraphDegree;
  return k;
}

void DestroyKernels(Kernels* k) { delete k; }

void HashRound(Kernels* k, std::uint64_t round) {
  for (int op = 0; op < kHashOps; ++op) {
    // At most half the slots ever hold a key: probes stay short.
    const std::uint64_t key = Mix(round * kHashOps + op) % (kHashSlots / 2) + 1;
    std::uint32_t i = static_cast<std::uint32_t>(Mix(key)) & (kHashSlots - 1);
    while (k->keys[i] != 0 && k->keys[i] != key) i = (i + 1) & (kHashSlots - 1);
    if (k->keys[i] == 0) {
      k->keys[i] = key;
      ++k->size;
    }
    k->values[i] += static_cast<std::uint64_t>(op);
  }
}

void SortRound(Kernels* k, std::uint64_t round) {
  for (int i = 0; i < kSortLength; ++i)
    k->sorted[i] = static_cast<std::int32_t>(Mix(round * kSortLength + i) & 0xfffffff);
  std::sort(k->sorted, k->sorted + kSortLength);
}

void BfsRound(Kernels* k, std::uint64_t round) {
  for (int n = 0; n < kGraphNodes; ++n) k->dist[n] = -1;
  const auto source = static_cast<std::int32_t>(round % kGraphNodes);
  int head = 0, tail = 0;
  k->dist[source] = 0;
  k->queue[tail++] = source;
  while (head < tail) {
    const std::int32_t v = k->queue[head++];
    for (std::int32_t e = k->offsets[v]; e < k->offsets[v + 1]; ++e) {
      const std::int32_t w = k->edges[e];
      if (k->dist[w] < 0) {
        k->dist[w] = k->dist[v] + 1;
        k->queue[tail++] = w;
      }
    }
  }
}

std::uint64_t KernelsChecksum(const Kernels* k) {
  std::uint64_t s = k->size;
  for (int i = 0; i < kHashSlots; ++i) s = s * 31 + k->values[i];
  for (int i = 0; i < kSortLength; ++i) s = s * 31 + static_cast<std::uint64_t>(k->sorted[i]);
  for (int i = 0; i < kGraphNodes; ++i) s = s * 31 + static_cast<std::uint64_t>(k->dist[i]);
  return s;
}

}  // namespace MMSB_BENCH_VARIANT
