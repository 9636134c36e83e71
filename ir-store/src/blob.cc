#include "blob.h"

#include <zstd.h>

namespace mmsb::ir {

namespace {
constexpr int kLevel = 3;  // zstd's default: fast, and IR text compresses about 6x at it
}  // namespace

struct BlobCodec::Contexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~Contexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

BlobCodec::BlobCodec() : ctx_(std::make_unique<Contexts>()) {}
BlobCodec::~BlobCodec() = default;

std::string BlobCodec::Compress(std::string_view text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t n =
      ZSTD_compressCCtx(ctx_->c, out.data(), out.size(), text.data(), text.size(), kLevel);
  MMSB_CHECK(!ZSTD_isError(n));  // only fails on a too-small buffer, which the bound excludes
  out.resize(n);
  return out;
}

Expected<std::string> BlobCodec::Decompress(std::string_view data, std::int64_t raw_size,
                                            const TextHash& hash) {
  if (raw_size < 0 || raw_size > kMaxBlobTextBytes) {
    return Corruption("IR blob " + HexOf(hash) + " has an implausible size " +
                      std::to_string(raw_size));
  }
  const unsigned long long frame = ZSTD_getFrameContentSize(data.data(), data.size());
  if (frame == ZSTD_CONTENTSIZE_ERROR ||
      (frame != ZSTD_CONTENTSIZE_UNKNOWN && frame != static_cast<unsigned long long>(raw_size))) {
    return Corruption("IR blob " + HexOf(hash) + " is not a valid zstd frame of its size");
  }
  std::string out(static_cast<size_t>(raw_size), '\0');
  const size_t n = ZSTD_decompressDCtx(ctx_->d, out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n) || n != out.size()) {
    return Corruption("IR blob " + HexOf(hash) + " does not decompress: " +
                      (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
  }
  if (HashText(out) != hash) {
    return Corruption("IR blob " + HexOf(hash) + " does not match its content hash");
  }
  return out;
}

}  // namespace mmsb::ir
