// Walking a page's indexed changes: the one primitive every query is built from.
//
// A PageCursor holds one page's bytes, starting from its base image (zeros, or the base
// checkpoint's), and applies, in log order, only the page's delta records whose bucket mask meets
// the cursor's mask. The bytes inside the mask's buckets are then exactly the page's bytes at the
// epoch reached; bytes outside are stale and must not be read.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "mmsb/query.h"

namespace mmsb::query {

inline constexpr Epoch kNoEpoch = ~Epoch{0};

class PageCursor {
 public:
  Status Init(const LogIndex& index, PageId page, std::uint64_t mask);
  // The epoch of the next change inside the mask; kNoEpoch when there is none.
  Epoch NextEpoch() const;
  // Applies the masked changes of every epoch <= e.
  Status ApplyThrough(Epoch e);
  bool ExistsAt(Epoch e) const;
  std::span<const std::uint8_t> bytes() const { return bytes_; }
  const IndexedPage& page() const { return *page_; }

 private:
  void Skip();
  const LogIndex* index_ = nullptr;
  const IndexedPage* page_ = nullptr;
  std::uint64_t mask_ = 0;
  std::span<const IndexedChange> changes_;
  std::size_t pos_ = 0;
  std::vector<std::uint8_t> bytes_;
};

// FormatScalar of the field's bytes in `page`.
std::string FormatField(const FieldRef& f, std::span<const std::uint8_t> page);

// Calls fn(epoch, field, field index, page before, page after) for every epoch <= `to` in which
// a field's bytes changed, page by page (epochs ascending within a page). `before` holds the
// page's bytes before the epoch only over the range spanned by that page's fields (the rest is
// stale); `after` as PageCursor::bytes() says.
Status WalkFieldChanges(const LogIndex& index, std::span<const FieldRef> fields, Epoch to,
                        const std::function<void(Epoch, const FieldRef&, std::size_t,
                                                 std::span<const std::uint8_t> before,
                                                 std::span<const std::uint8_t> after)>& fn);

}  // namespace mmsb::query
