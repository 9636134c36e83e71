// CommittedImages: what the device hub reads from its owner (the bus), so the device layer sits
// below the bus and never includes it. Implementations are called under the owner's lock.
#pragma once

#include <cstdint>
#include <span>

#include "mmsb/page.h"

namespace mmsb {

class CommittedImages {
 public:
  // A page's bytes as of the last commit (its twin; zeros before its first commit), valid until
  // the next commit.
  virtual std::span<const std::uint8_t> CommittedImage(const Page* p) const = 0;

 protected:
  ~CommittedImages() = default;
};

}  // namespace mmsb
