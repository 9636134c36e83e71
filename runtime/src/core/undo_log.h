// UndoLog: the bytes a commit overwrote, so a failed commit can roll every page back.
//
// Before the commit pipeline applies a delta to a page's twin, it saves the twin's old bytes of
// each run here (they are also the page's previous-epoch bytes). Rollback writes them back into
// the twin, newest first, and restores the page's epoch. Live page memory belongs to the program,
// which may be storing to it on other threads: it is written back only for entries saved with
// `restore_live` (pages the runtime itself wrote, such as propagation's derived pages); for the
// others Rollback hands each range to a callback (the bus marks it, so the next commit diffs it
// again). Saving appends to flat
// buffers that keep their capacity across commits: no allocation per change.
//
// Derived pages the commit thread diffs (propagation's serial loop) save less: SaveDerived keeps
// only the delta's index in the epoch's deltas and the overwritten bytes, since the delta itself
// names the page, its runs and the previous epoch (its base epoch). Those deltas must still be in
// the epoch's deltas, at the same indices, when Rollback runs (docs/Performance.md, "One undo
// record per derived page's bytes").
//
// Thread-safety: none; one UndoLog per thread (pool workers keep their own and the commit thread
// merges them with Append).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/page.h"

#include "core/page_record.h"
#include "core/small_copy.h"

namespace mmsb {

class UndoLog {
 public:
  // Saves `before`'s bytes under each run of `d` (`before` is the image d is applied to).
  void Save(Page* page, Epoch prev_epoch, const Delta& d, const std::uint8_t* before,
            bool restore_live) {
    Entry& e = entries_.emplace_back();
    e.page = page;
    e.prev_epoch = prev_epoch;
    e.restore_live = restore_live;
    e.first_run = runs_.size();
    e.first_byte = bytes_size_;
    // At most the changed bytes: one growth check per delta, then plain copies.
    Reserve(d.changed_bytes());
    d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
      ByteRun& run = runs_.emplace_back();
      run.offset = off;
      run.length = len;
      std::memcpy(bytes_.get() + bytes_size_, before + off, len);
      bytes_size_ += len;
    });
  }
  // Saves `before`'s bytes under each run of `d`, the derived delta at index `delta` of the
  // epoch's deltas (restored with live memory on rollback). Every derived save of a commit comes
  // after the entries saved before it and before those saved after it, with Save or Append
  // between them only for other derived pages (the pool's): Rollback takes them as one block.
  void SaveDerived(std::uint32_t delta, const Delta& d, const std::uint8_t* before) {
    if (derived_.empty()) derived_mark_ = entries_.size();
    derived_.push_back(delta);
    const std::uint32_t n = d.changed_bytes();
    if (derived_size_ + n > derived_cap_) Grow(derived_bytes_, derived_size_, derived_cap_, n);
    std::uint8_t* at = derived_bytes_.get() + derived_size_;
    d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
      SmallCopy(at, before + off, len);
      at += len;
    });
    derived_size_ += n;
  }
  // SaveDerived for a delta whose runs the caller has at hand: `runs` (`count` of them, `changed`
  // bytes in all) must be exactly the delta's runs, as DeltaFromMasks returns them for the delta it
  // wrote inline; Rollback then reads the delta as for SaveDerived.
  [[gnu::always_inline]] void SaveDerivedRuns(std::uint32_t delta, const ByteRun* runs,
                                              std::uint32_t count, std::uint32_t changed,
                                              const std::uint8_t* before) {
    if (derived_.empty()) derived_mark_ = entries_.size();
    derived_.push_back(delta);
    if (derived_size_ + changed > derived_cap_)
      Grow(derived_bytes_, derived_size_, derived_cap_, changed);
    std::uint8_t* at = derived_bytes_.get() + derived_size_;
    for (std::uint32_t k = 0; k < count; ++k) {
      SmallCopy(at, before + runs[k].offset, runs[k].length);
      at += runs[k].length;
    }
    derived_size_ += changed;
  }
  void Append(const UndoLog& other) {
    for (const Entry& e : other.entries_) {
      entries_.push_back({e.page, e.prev_epoch, runs_.size() + e.first_run,
                          bytes_size_ + e.first_byte, e.restore_live});
    }
    runs_.insert(runs_.end(), other.runs_.begin(), other.runs_.end());
    Reserve(other.bytes_size_);
    if (other.bytes_size_ != 0)
      std::memcpy(bytes_.get() + bytes_size_, other.bytes_.get(), other.bytes_size_);
    bytes_size_ += other.bytes_size_;
  }
  // Restores every saved range in the twin (and the page, for `restore_live` entries), newest
  // first; `kept(page, offset, length)` is called for each range whose live bytes stay. The
  // derived saves are restored from `deltas` (the epoch's deltas they index), each page found by
  // `page_of(id)`, after the entries saved after them and before those saved before them.
  template <class Kept, class PageOf>
  void Rollback(Kept&& kept, const std::vector<Delta>& deltas, PageOf&& page_of) {
    const std::size_t mark = derived_.empty() ? entries_.size() : derived_mark_;
    RollbackEntries(mark, kept);
    std::size_t end = derived_size_;
    for (std::size_t i = derived_.size(); i-- > 0;) {
      const Delta& d = deltas[derived_[i]];
      Page* page = page_of(d.page());
      std::size_t pos = end - d.changed_bytes();
      end = pos;
      d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
        std::memcpy(Rec(page)->data_ + off, derived_bytes_.get() + pos, len);
        std::memcpy(Rec(page)->twin + off, derived_bytes_.get() + pos, len);
        pos += len;
      });
      Rec(page)->epoch_ = d.base_epoch();
    }
    RollbackEntries(0, kept);
    Clear();
  }
  // As above, for a log without derived saves.
  template <class Kept>
  void Rollback(Kept&& kept) {
    MMSB_CHECK(derived_.empty());
    RollbackEntries(0, kept);
    Clear();
  }
  void Clear() {
    entries_.clear();
    runs_.clear();
    bytes_size_ = 0;
    derived_.clear();
    derived_size_ = 0;
  }
  bool empty() const { return entries_.empty() && derived_.empty(); }

 private:
  struct Entry {
    Page* page;
    Epoch prev_epoch;
    std::size_t first_run;
    std::size_t first_byte;
    bool restore_live;
  };
  // Restores entries [first, size), newest first, and drops them.
  template <class Kept>
  void RollbackEntries(std::size_t first, Kept& kept) {
    for (std::size_t i = entries_.size(); i-- > first;) {
      const Entry& e = entries_[i];
      const std::size_t run_end =
          i + 1 < entries_.size() ? entries_[i + 1].first_run : runs_.size();
      std::size_t pos = e.first_byte;
      for (std::size_t r = e.first_run; r < run_end; ++r) {
        if (e.restore_live) {
          std::memcpy(Rec(e.page)->data_ + runs_[r].offset, bytes_.get() + pos, runs_[r].length);
        } else {
          kept(e.page, runs_[r].offset, runs_[r].length);
        }
        std::memcpy(Rec(e.page)->twin + runs_[r].offset, bytes_.get() + pos, runs_[r].length);
        pos += runs_[r].length;
      }
      Rec(e.page)->epoch_ = e.prev_epoch;
    }
    if (first < entries_.size()) {
      runs_.resize(entries_[first].first_run);
      bytes_size_ = entries_[first].first_byte;
      entries_.resize(first);
    }
  }
  // Room for `n` more saved bytes (amortised doubling; no zero-fill, unlike a vector's resize).
  void Reserve(std::size_t n) {
    if (bytes_size_ + n <= bytes_cap_) return;
    Grow(bytes_, bytes_size_, bytes_cap_, n);
  }
  static void Grow(std::unique_ptr<std::uint8_t[]>& bytes, std::size_t size, std::size_t& cap,
                   std::size_t n) {
    const std::size_t grown_cap = std::max<std::size_t>({size + n, cap * 2, 4096});
    std::unique_ptr<std::uint8_t[]> grown(new std::uint8_t[grown_cap]);
    if (size != 0) std::memcpy(grown.get(), bytes.get(), size);
    bytes = std::move(grown);
    cap = grown_cap;
  }

  std::vector<Entry> entries_;
  std::vector<ByteRun> runs_;
  std::unique_ptr<std::uint8_t[]> bytes_;  // the saved bytes, runs back to back
  std::size_t bytes_size_ = 0;
  std::size_t bytes_cap_ = 0;
  // SaveDerived's records: the deltas' indices, and their overwritten bytes back to back.
  std::vector<std::uint32_t> derived_;
  std::size_t derived_mark_ = 0;  // entries_.size() at the first derived save
  std::unique_ptr<std::uint8_t[]> derived_bytes_;
  std::size_t derived_size_ = 0;
  std::size_t derived_cap_ = 0;
};

}  // namespace mmsb
