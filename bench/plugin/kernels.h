// Kernels on pages for plugin.runtime_overhead, compiled twice into plugin_bench (kernels.cc):
// with the MMSB plugin (the state is a page, every store is instrumented) and without it.
#pragma once

#include <cstdint>

inline constexpr int kHashSlots = 8192;  // a power of two
inline constexpr int kHashOps = 4096;
inline constexpr int kSortLength = 4096;
inline constexpr int kGraphNodes = 4096;
inline constexpr int kGraphDegree = 4;

namespace instrumented {
struct Kernels;
Kernels* CreateKernels();
void DestroyKernels(Kernels* k);
void HashRound(Kernels* k, std::uint64_t round);
void SortRound(Kernels* k, std::uint64_t round);
void BfsRound(Kernels* k, std::uint64_t round);
std::uint64_t KernelsChecksum(const Kernels* k);
}  // namespace instrumented

namespace plain {
struct Kernels;
Kernels* CreateKernels();
void DestroyKernels(Kernels* k);
void HashRound(Kernels* k, std::uint64_t round);
void SortRound(Kernels* k, std::uint64_t round);
void BfsRound(Kernels* k, std::uint64_t round);
std::uint64_t KernelsChecksum(const Kernels* k);
}  // namespace plain
