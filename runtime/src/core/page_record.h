// PageRecord: the runtime's record of a page, the public Page plus the bookkeeping users never see.
//
// The public header (mmsb/page.h) carries only the fields its inline accessors read; the twin,
// the page-table slot, the storage class and the creation record live here. Every Page a user
// holds is a PageRecord: the bus is the only code that creates pages (Bus::NewRecord allocates
// PageRecord chunks), so Rec() below is the one place a Page* becomes a PageRecord*.
//
// It sits in core, not in bus, because the layers below the bus use it too: the undo log
// restores twins and epochs, and the dependency graph writes derived pages and prefetches twins.
//
// Thread-safety: as Page; the fields below are written by the commit pipeline and the page
// registry under the bus's locks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmsb/page.h"
#include "mmsb/types.h"

namespace mmsb {

// The record's fields a commit reads for every page it diffs (the derived diff of propagation
// reads them for each of thousands of pages per commit). They sit before the Page so that, with
// Page's fields before its name, they fill the record's first cache line: a visit reads one line
// of the record instead of two (docs/Performance.md, "The page record's line").
struct PageRecordHead {
  std::uint8_t* twin = nullptr;  // image at the last commit (valid when twin_valid)
  bool twin_valid = false;       // false until the first commit has seen the page
  bool twin_is_zero = false;     // page started zeroed: the first diff is against zeros
  bool maybe_nonzero = false;    // storage may hold non-zero bytes (for lazy zeroing on reuse)
  std::uint8_t size_class = 0;   // pool size class, or 0xff for large pages
  std::uint32_t slot = 0;        // index in the page table
};

struct alignas(64) PageRecord final : PageRecordHead, Page {
  // The runtime writes Page's fields too (the accessors only read them); they keep Page's names.
  // The record's own fields are plain struct fields.
  using Page::data_;
  using Page::epoch_;
  using Page::escaped_;
  using Page::id_;
  using Page::is_static_;
  using Page::location_;
  using Page::name_;
  using Page::size_;
  using Page::type_;

  std::size_t capacity = 0;  // bytes of the storage block
  bool live = false;
  Epoch created_epoch = 0;         // the bus epoch when created (to cancel create+free pairs)
  std::uint32_t created_slot = 0;  // index of its creation record while that is pending
};

// The layout the line above relies on (checked where it is defined, so a field added to Page or
// the head that pushes one of them to the second line fails to compile).
static_assert(sizeof(PageRecord) == 128, "a page record is two cache lines");

// The record behind a page. Valid for every Page the runtime handed out (see above). The Page is
// not at the record's start (PageRecordHead is): a Page* and its record's address differ by
// sizeof(PageRecordHead), so a page becomes its record only through Rec() (a static_cast, which
// adjusts), never through reinterpret_cast, void* or arithmetic on the address.
inline PageRecord* Rec(Page* page) { return static_cast<PageRecord*>(page); }
inline const PageRecord* Rec(const Page* page) { return static_cast<const PageRecord*>(page); }
// The same for a page that is there (a reference): a cast of a reference has no null to keep, so
// it is one address adjustment, without the test and conditional move a pointer's cast needs.
inline PageRecord& RecOf(Page& page) { return static_cast<PageRecord&>(page); }
inline const PageRecord& RecOf(const Page& page) { return static_cast<const PageRecord&>(page); }

}  // namespace mmsb
