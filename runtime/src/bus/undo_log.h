// UndoLog: the bytes a commit overwrote, so a failed commit can roll every page back.
//
// Before the commit pipeline applies a delta to a page's twin, it saves the twin's old bytes of
// each run here (they are also the page's previous-epoch bytes). Rollback writes them back into
// both the page and its twin, newest first, and restores the page's epoch. Saving appends to two
// flat vectors that keep their capacity across commits: no allocation per change.
//
// Thread-safety: none; one UndoLog per thread (pool workers keep their own and the commit thread
// merges them with Append).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/page.h"

namespace mmsb {

class UndoLog {
 public:
  // Saves `before`'s bytes under each run of `d` (`before` is the image d is applied to).
  void Save(Page* page, Epoch prev_epoch, const Delta& d, const std::uint8_t* before) {
    entries_.push_back({page, prev_epoch, runs_.size(), bytes_.size()});
    d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
      runs_.push_back({off, len});
      bytes_.insert(bytes_.end(), before + off, before + off + len);
    });
  }
  void Append(const UndoLog& other) {
    for (const Entry& e : other.entries_) {
      entries_.push_back({e.page, e.prev_epoch, runs_.size() + e.first_run, bytes_.size() + e.first_byte});
    }
    runs_.insert(runs_.end(), other.runs_.begin(), other.runs_.end());
    bytes_.insert(bytes_.end(), other.bytes_.begin(), other.bytes_.end());
  }
  // Restores every saved range in the page and its twin, newest first.
  void Rollback() {
    for (std::size_t i = entries_.size(); i-- > 0;) {
      const Entry& e = entries_[i];
      const std::size_t run_end = i + 1 < entries_.size() ? entries_[i + 1].first_run : runs_.size();
      std::size_t pos = e.first_byte;
      for (std::size_t r = e.first_run; r < run_end; ++r) {
        std::memcpy(e.page->data_ + runs_[r].offset, bytes_.data() + pos, runs_[r].length);
        std::memcpy(e.page->twin_ + runs_[r].offset, bytes_.data() + pos, runs_[r].length);
        pos += runs_[r].length;
      }
      e.page->epoch_ = e.prev_epoch;
    }
    Clear();
  }
  void Clear() {
    entries_.clear();
    runs_.clear();
    bytes_.clear();
  }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    Page* page;
    Epoch prev_epoch;
    std::size_t first_run;
    std::size_t first_byte;
  };
  std::vector<Entry> entries_;
  std::vector<ByteRun> runs_;
  std::vector<std::uint8_t> bytes_;
};

}  // namespace mmsb
