// LatencyHistogram (mmsb/stats.h): a value type every layer may record into (the bus's commits,
// the propagation's recomputes), so it lives in core.
#include <algorithm>
#include <bit>

#include "mmsb/stats.h"

namespace mmsb {

void LatencyHistogram::Record(std::uint64_t ns) {
  const int b = ns == 0 ? 0 : std::min(kBuckets - 1, static_cast<int>(std::bit_width(ns)) - 1);
  ++buckets_[b];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

std::uint64_t LatencyHistogram::PercentileNs(double p) const {
  if (count_ == 0) return 0;
  const double target = p / 100.0 * static_cast<double>(count_);
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (static_cast<double>(seen) >= target && buckets_[i] != 0) {
      return std::min(max_, (std::uint64_t{2} << i) - 1);
    }
  }
  return max_;
}

}  // namespace mmsb
