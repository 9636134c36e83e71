// ZeroPrewriter: an optional capability of a WritableFile (an Env's file may also derive from
// it; LogWriter asks with dynamic_cast). Env::Default()'s files have it; an Env without it
// simply gets no zeros written ahead.
//
// PrewriteZeros(ahead) makes sure at least `ahead` bytes past Size() are real zeros already
// written and synced (writing, when it must, twice as many, so calls are rare), without moving
// the append position; fdatasync then also makes everything appended so far durable. Appends
// into that range overwrite blocks that exist and keep the file's size, so the Sync() after them
// has no block allocation or size change to journal: fdatasync writes data only (an fallocate'd
// range would not do: its unwritten extents still journal their conversion on first write).
// Close() cuts the file back to Size(). Log readers take a run of zeros from a record boundary
// to the end of a file as its end (docs/SerializationSpec.md, "Zero tail").
//
// Thread-compatible, like the WritableFile it belongs to.
#pragma once

#include <cstdint>

#include "mmsb/status.h"

namespace mmsb::log {

class ZeroPrewriter {
 public:
  virtual ~ZeroPrewriter() = default;
  virtual Status PrewriteZeros(std::uint64_t ahead) = 0;
};

}  // namespace mmsb::log
