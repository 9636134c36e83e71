#include "blob.h"

#include <zdict.h>
#include <zstd.h>

#include <map>

namespace mmsb::ir {

namespace {
constexpr int kLevel = 3;  // zstd's default: fast, and IR text compresses about 6x at it
}  // namespace

struct BlobCodec::Contexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  DictionaryLoader loader;
  ZSTD_CDict* cdict = nullptr;  // what Compress uses; null: none
  std::uint32_t cdict_id = 0;
  std::map<std::uint32_t, ZSTD_DDict*> ddicts;  // loaded for Decompress, by id
  ~Contexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
    ZSTD_freeCDict(cdict);
    for (auto& [id, dd] : ddicts) ZSTD_freeDDict(dd);
  }
};

BlobCodec::BlobCodec(DictionaryLoader loader) : ctx_(std::make_unique<Contexts>()) {
  ctx_->loader = std::move(loader);
}
BlobCodec::~BlobCodec() = default;

std::string BlobCodec::Compress(std::string_view text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t n =
      ctx_->cdict != nullptr
          ? ZSTD_compress_usingCDict(ctx_->c, out.data(), out.size(), text.data(), text.size(),
                                     ctx_->cdict)
          : ZSTD_compressCCtx(ctx_->c, out.data(), out.size(), text.data(), text.size(), kLevel);
  MMSB_CHECK(!ZSTD_isError(n));  // only fails on a too-small buffer, which the bound excludes
  out.resize(n);
  return out;
}

Expected<std::uint32_t> BlobCodec::UseDictionary(std::string_view dict) {
  ZSTD_freeCDict(ctx_->cdict);
  ctx_->cdict = nullptr;
  ctx_->cdict_id = 0;
  if (dict.empty()) return std::uint32_t{0};
  // Only a dictionary in zstd's format (magic, id, entropy tables): a raw-content one has no id
  // for frames to name.
  const std::uint32_t id = ZDICT_getDictID(dict.data(), dict.size());
  if (id == 0) return Corruption("an IR store dictionary is not a zstd dictionary");
  ctx_->cdict = ZSTD_createCDict(dict.data(), dict.size(), kLevel);
  if (ctx_->cdict == nullptr) {
    return Corruption("IR store dictionary " + std::to_string(id) + " does not load");
  }
  ctx_->cdict_id = id;
  return id;
}

std::uint32_t BlobCodec::dictionary_id() const { return ctx_->cdict_id; }

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
  ZSTD_DDict* ddict = nullptr;
  if (const std::uint32_t id = ZSTD_getDictID_fromFrame(data.data(), data.size()); id != 0) {
    auto it = ctx_->ddicts.find(id);
    if (it == ctx_->ddicts.end()) {
      const std::string missing =
          "IR blob " + HexOf(hash) + " names zstd dictionary " + std::to_string(id) + ", which ";
      if (!ctx_->loader) return Corruption(missing + "this reader was not given");
      auto dict = ctx_->loader(id);
      if (!dict.ok()) return Corruption(missing + "the store lacks: " + dict.status().message());
      if (ZDICT_getDictID(dict->data(), dict->size()) != id) {
        return Corruption(missing + "is stored damaged (not a zstd dictionary of that id)");
      }
      ZSTD_DDict* dd = ZSTD_createDDict(dict->data(), dict->size());
      if (dd == nullptr) return Corruption(missing + "does not load");
      it = ctx_->ddicts.emplace(id, dd).first;
    }
    ddict = it->second;
  }
  std::string out(static_cast<size_t>(raw_size), '\0');
  const size_t n = ddict != nullptr ? ZSTD_decompress_usingDDict(ctx_->d, out.data(), out.size(),
                                                                 data.data(), data.size(), ddict)
                                    : ZSTD_decompressDCtx(ctx_->d, out.data(), out.size(),
                                                          data.data(), data.size());
  if (ZSTD_isError(n) || n != out.size()) {
    return Corruption("IR blob " + HexOf(hash) + " does not decompress: " +
                      (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
  }
  if (HashText(out) != hash) {
    return Corruption("IR blob " + HexOf(hash) + " does not match its content hash");
  }
  return out;
}

std::string TrainDictionary(const std::vector<std::string_view>& samples) {
  std::string joined;
  std::vector<size_t> sizes;
  sizes.reserve(samples.size());
  for (std::string_view s : samples) {
    joined.append(s);
    sizes.push_back(s.size());
  }
  std::string dict(kDictionaryBytes, '\0');
  const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), joined.data(), sizes.data(),
                                         static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n)) return "";
  dict.resize(n);
  return dict;
}

}  // namespace mmsb::ir
