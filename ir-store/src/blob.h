// Blob encoding for the IR store: zstd frames of normalised IR text, compressed alone or with a
// zstd dictionary the store keeps (its `dicts` table; a frame names its dictionary's id, so a
// reader finds it and frames without one stay readable). The reader treats a stored blob and a
// stored dictionary as untrusted: sizes are bounded and the decoded text must hash to its
// address. See docs/IRStore.md, "Compression".
//
// Thread-safety: a BlobCodec keeps zstd contexts and dictionaries; one thread at a time per
// codec.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/ir/record.h"
#include "mmsb/status.h"

namespace mmsb::ir {

// Texts larger than this are refused by the reader (a corrupt size field must not allocate).
inline constexpr std::int64_t kMaxBlobTextBytes = 256ll << 20;
// The size a trained dictionary is given (zstd's own default is 110 KB; IR texts of one build
// share their vocabulary, and 64 KiB trained on ~1 MiB of them halves the frames).
inline constexpr std::size_t kDictionaryBytes = 64 << 10;

class BlobCodec {
 public:
  // Returns the bytes of the dictionary with zstd dictionary id `id`, NotFound when there is none.
  using DictionaryLoader = std::function<Expected<std::string>(std::uint32_t id)>;

  explicit BlobCodec(DictionaryLoader loader = nullptr);
  ~BlobCodec();
  BlobCodec(const BlobCodec&) = delete;
  BlobCodec& operator=(const BlobCodec&) = delete;

  // Compresses with the dictionary UseDictionary chose, or alone.
  std::string Compress(std::string_view text);
  // Compress uses `dict` (a zstd dictionary) from now on; an empty `dict`: none. Returns the
  // dictionary's id (0 for none); Corruption when `dict` is not a zstd dictionary.
  Expected<std::uint32_t> UseDictionary(std::string_view dict);
  std::uint32_t dictionary_id() const;
  // Decodes `data`, which must expand to exactly `raw_size` bytes hashing to `hash`. A frame
  // that names a dictionary is decoded with it (through the loader, once per codec).
  Expected<std::string> Decompress(std::string_view data, std::int64_t raw_size,
                                   const TextHash& hash);

 private:
  struct Contexts;
  std::unique_ptr<Contexts> ctx_;
};

// Trains a zstd dictionary of at most kDictionaryBytes on `samples` (libzstd's ZDICT). Empty
// when zstd finds the samples too few or too small to train on.
std::string TrainDictionary(const std::vector<std::string_view>& samples);

}  // namespace mmsb::ir
