// The barrier's out-of-line part (mmsb/barrier.h): the shadow region the inline barrier reads (and
// the static window's record inside it) and the slow path of a span mark. Every layer that writes
// page memory on the user's behalf (the bus, the propagation's recomputes, the device hub's
// downloads, restore) marks through it, so it depends on nothing but core: the bus publishes the
// region, it does not own the marking.
#include "mmsb/barrier.h"

namespace mmsb {

namespace rt {
ShadowRegion g_region;
ShadowRegion g_static_region;

namespace detail {
void MarkSpanSlow(const ShadowRegion& r, std::uintptr_t off, std::size_t n) noexcept {
  if (n == 0 || off >= r.span) return;
  std::uintptr_t end = off + n;
  if (end > r.span || end < off) end = r.span;
  for (std::uintptr_t g = off >> kGranuleShift, last = (end - 1) >> kGranuleShift; g <= last; ++g) {
    MarkOne(r.shadow, g << kGranuleShift);
  }
}
}  // namespace detail
}  // namespace rt

}  // namespace mmsb
