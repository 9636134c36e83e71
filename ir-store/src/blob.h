// Blob encoding for the IR store: zstd frames of normalised IR text. The reader treats a
// stored blob as untrusted: sizes are bounded and the decoded text must hash to its address.
//
// Thread-safety: a BlobCodec keeps zstd contexts; one thread at a time per codec.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mmsb/ir/record.h"
#include "mmsb/status.h"

namespace mmsb::ir {

// Texts larger than this are refused by the reader (a corrupt size field must not allocate).
inline constexpr std::int64_t kMaxBlobTextBytes = 256ll << 20;

class BlobCodec {
 public:
  BlobCodec();
  ~BlobCodec();
  BlobCodec(const BlobCodec&) = delete;
  BlobCodec& operator=(const BlobCodec&) = delete;

  std::string Compress(std::string_view text);
  // Decodes `data`, which must expand to exactly `raw_size` bytes hashing to `hash`.
  Expected<std::string> Decompress(std::string_view data, std::int64_t raw_size,
                                   const TextHash& hash);

 private:
  struct Contexts;
  std::unique_ptr<Contexts> ctx_;
};

}  // namespace mmsb::ir
