// Pages: contiguous byte ranges whose every change becomes an exact delta at commit.
//
// Heap pages are carved from the arena (runtime-reserved address ranges); pages of 4 KiB or less
// come from pooled size classes with no syscall per page. Static pages are caller-owned storage
// (the plugin puts them in the `mmsb_pages` section) registered with RegisterStaticPage.
//
// Ownership: the runtime owns every Page object. A Page* stays valid until FreePage(page) or
// mmsb::stop(); using it afterwards is undefined. Page bytes are plain memory: reads are free,
// writes must go through the write barrier (mmsb::rt::w / mmsb::rt::MarkRange, see barrier.h) or
// the page must be marked escaped, else the change is missed (verify mode reports it).
//
// Thread-safety: CreatePage, FreePage, FindPage and the accessors may be called from many threads
// at once. Freeing a page concurrently with a commit is serialised by the runtime. Freeing the
// same page twice is an error (FailedPrecondition) when detected, undefined otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb {

struct PageOptions {
  Location location = Location::kCpu;
  const TypeDescriptor* type = nullptr;  // registered descriptor, or null for raw bytes
  std::string name;                      // stable identity for restore; may be empty
  bool zeroed = true;  // false: contents unspecified (the caller constructs into it)
};

// A snapshot of a page's metadata.
struct PageInfo {
  PageId id = kInvalidPageId;
  std::size_t size = 0;
  Epoch epoch = 0;  // last epoch in which the page changed
  Location location = Location::kCpu;
  const TypeDescriptor* type = nullptr;
  std::string name;
  bool is_static = false;
  bool escaped = false;
};

class Page {
 public:
  PageId id() const { return id_; }
  std::size_t size() const { return size_; }
  std::uint8_t* data() const { return data_; }
  Epoch epoch() const { return epoch_; }
  Location location() const { return location_; }
  const TypeDescriptor* type() const { return type_; }
  const std::string& name() const { return name_; }
  bool is_static() const { return is_static_; }
  bool escaped() const { return escaped_; }
  PageInfo Info() const;

  Page(const Page&) = delete;
  Page& operator=(const Page&) = delete;

 protected:
  // Only the runtime creates pages: its internal record derives from Page and adds the
  // bookkeeping (twin, page-table slot, storage class, ...) that stays out of this header.
  Page() = default;
  ~Page() = default;

  // What the accessors above return. The name comes last: the fields before it share a cache
  // line with the runtime's own per-page fields (the commit reads them for every changed page).
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  PageId id_ = kInvalidPageId;
  Epoch epoch_ = 0;
  const TypeDescriptor* type_ = nullptr;
  Location location_ = Location::kCpu;
  bool is_static_ = false;
  bool escaped_ = false;
  std::string name_;
};

// Creates a heap page of `size` bytes (1 byte to 4 GiB - 1). Fails with InvalidArgument for bad
// sizes, OutOfMemory when the arena is exhausted, Unsupported for Gpu/Unified without a
// device backend, FailedPrecondition when the bus is not started.
Expected<Page*> CreatePage(std::size_t size, const PageOptions& options = {});

// Registers caller-owned storage as a static page. `addr` must be 64-byte aligned, and the storage
// must outlive the bus. Its current bytes are the page's epoch-0 image.
Expected<Page*> RegisterStaticPage(void* addr, std::size_t size, const PageOptions& options);

// Frees a heap page or unregisters a static one. Pending, uncommitted changes are dropped.
Status FreePage(Page* page);
Status FreePage(PageId id);

// Looks up a live page. FindPage returns null when absent; GetPage returns NotFound.
Page* FindPage(PageId id);
Expected<Page*> GetPage(PageId id);
// Looks up a live page by its stable name (static pages); null when absent.
Page* FindPageByName(std::string_view name);
// The live page whose storage holds `p` (a [[mmsb::page]] variable or an object from `new`), or
// null for untracked memory: `mmsb::PageOf(&g_particles)->id()`.
Page* PageOf(const void* p);

// Marks the page escaped: from now on it is fully diffed at every commit, so writes that bypass
// the barrier are still captured exactly, at the cost of a full compare.
void MarkEscaped(Page* page);

std::size_t PageCount();
std::vector<PageInfo> ListPages();

// Registers a type descriptor (validated) and returns the interned copy. Registering the same
// name twice returns the first registration when the layouts are equal, AlreadyExists otherwise.
Expected<const TypeDescriptor*> RegisterType(const TypeDescriptor& type);
const TypeDescriptor* FindType(std::string_view name);

}  // namespace mmsb
