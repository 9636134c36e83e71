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
  // first; `kept(page, offset, length)` is called for each range whose live bytes stay.
  template <class Kept>
  void Rollback(Kept&& kept) {
    for (std::size_t i = entries_.size(); i-- > 0;) {
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
    Clear();
  }
  void Clear() {
    entries_.clear();
    runs_.clear();
    bytes_size_ = 0;
  }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    Page* page;
    Epoch prev_epoch;
    std::size_t first_run;
    std::size_t first_byte;
    bool restore_live;
  };
  // Room for `n` more saved bytes (amortised doubling; no zero-fill, unlike a vector's resize).
  void Reserve(std::size_t n) {
    if (bytes_size_ + n <= bytes_cap_) return;
    const std::size_t cap = std::max<std::size_t>({bytes_size_ + n, bytes_cap_ * 2, 4096});
    std::unique_ptr<std::uint8_t[]> grown(new std::uint8_t[cap]);
    if (bytes_size_ != 0) std::memcpy(grown.get(), bytes_.get(), bytes_size_);
    bytes_ = std::move(grown);
    bytes_cap_ = cap;
  }

  std::vector<Entry> entries_;
  std::vector<ByteRun> runs_;
  std::unique_ptr<std::uint8_t[]> bytes_;  // the saved bytes, runs back to back
  std::size_t bytes_size_ = 0;
  std::size_t bytes_cap_ = 0;
};

}  // namespace mmsb
