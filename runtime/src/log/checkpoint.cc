// Checkpoint files: atomic write, full-check load.
#include "mmsb/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
// libxxhash's runtime dispatch (AVX2/AVX-512 where the CPU has them; the same hash values): the
// frame checks hash every byte of the log, and the default entry points are the SSE2 build.
#include <xxh_x86dispatch.h>
#endif

#include "log/log_format.h"
#include "log/log_records.h"
#include "log/memory_limit.h"
#include "log/recompute.h"
#include "log/record_reader.h"
#include "log/segments.h"

namespace mmsb {
namespace {

constexpr std::size_t kStageBytes = std::size_t{4} << 20;  // bytes per write

// Stages small records (and small page chunks) into 4 MiB writes; a large page chunk is hashed
// in place and written straight from page memory together with its header (writev). Gathering
// every 4 KiB page by reference was measured slower than one staging copy: the kernel's per-iovec
// cost outweighs the memcpy.
class CheckpointOut {
 public:
  CheckpointOut(WritableFile* file, std::uint64_t log_id) : file_(file), log_id_(log_id) {
    stage_.reserve(kStageBytes + (std::size_t{64} << 10));
  }

  Status Record(LogRecordType type, std::span<const std::uint8_t> payload) {
    log::AppendRecord(stage_, log_id_, static_cast<std::uint8_t>(type), payload);
    return stage_.size() >= kStageBytes ? Drain() : Status::Ok();
  }

  Status Raw(std::span<const std::uint8_t> bytes) {
    stage_.insert(stage_.end(), bytes.begin(), bytes.end());
    return stage_.size() >= kStageBytes ? Drain() : Status::Ok();
  }

  // A page-image record: a 24-byte prefix plus `bytes`.
  Status Image(PageId id, Epoch epoch, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
    const auto length = static_cast<std::uint32_t>(log::kPageImagePrefix + bytes.size());
    if (bytes.size() < kDirectBytes) {
      // Copy, then hash the copy while it is in cache.
      const std::size_t at = stage_.size();
      stage_.resize(at + log::kRecordHeaderSize + length);
      std::uint8_t* head = stage_.data() + at;
      std::uint8_t* payload = head + log::kRecordHeaderSize;
      log::EncodePageImagePrefix(id, epoch, offset, payload);
      std::memcpy(payload + log::kPageImagePrefix, bytes.data(), bytes.size());
      log::FillRecordHeader(head, log_id_, static_cast<std::uint8_t>(LogRecordType::kPageImage),
                            {payload, length});
      return stage_.size() >= kStageBytes ? Drain() : Status::Ok();
    }
    std::uint8_t head[log::kRecordHeaderSize + log::kPageImagePrefix];
    std::uint8_t* prefix = head + log::kRecordHeaderSize;
    log::EncodePageImagePrefix(id, epoch, offset, prefix);
    log::FillRecordHeaderPrefix(head, static_cast<std::uint8_t>(LogRecordType::kPageImage), length);
    const std::uint64_t h = log::HeaderHash(head, log_id_);
    log::Put32(head + 12, static_cast<std::uint32_t>(h));
    XXH3_64bits_reset_withSeed(&hash_, h);
    XXH3_64bits_update(&hash_, prefix, log::kPageImagePrefix);
    XXH3_64bits_update(&hash_, bytes.data(), bytes.size());
    log::Put64(head + 16, XXH3_64bits_digest(&hash_));
    MMSB_RETURN_IF_ERROR(Drain());
    const std::span<const std::uint8_t> pieces[] = {head, bytes};
    return file_->AppendV(pieces);
  }

  Status Drain() {
    if (stage_.empty()) return Status::Ok();
    Status s = file_->Append(stage_);
    stage_.clear();
    return s;
  }

 private:
  static constexpr std::size_t kDirectBytes = std::size_t{256} << 10;
  WritableFile* file_;
  std::uint64_t log_id_;
  std::vector<std::uint8_t> stage_;
  XXH3_state_t hash_;
};

std::string DirOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

CheckpointContents ContentsOf(const LogState& state, std::uint64_t log_id) {
  CheckpointContents c;
  c.log_id = log_id;
  c.epoch = state.epoch;
  c.unix_nanos = state.unix_nanos;
  c.page_id_high = state.page_id_high;
  for (const auto& [name, t] : state.types) c.types.push_back(t.get());
  for (const auto& [id, p] : state.pages) {
    c.pages.push_back({id, p.epoch, p.location, p.is_static, p.name, p.type_name, p.bytes});
  }
  c.edges = state.edges;
  return c;
}

Expected<std::uint64_t> WriteCheckpointFile(const std::string& path, const CheckpointContents& c,
                                            const CheckpointOptions& options) {
  Env* env = options.env ? options.env : Env::Default();
  const std::string tmp = path + ".tmp";
  auto f = env->NewWritableFile(tmp);
  if (!f.ok()) return f.status();
  WritableFile* file = f->get();
  Status s = [&]() -> Status {
    log::FileHeader h;
    h.checkpoint = true;
    h.log_id = c.log_id;
    h.seq = 0;
    h.base_epoch = c.epoch;
    h.base_page_id = c.page_id_high;
    std::uint8_t hdr[log::kFileHeaderSize];
    log::EncodeFileHeader(h, hdr);
    CheckpointOut out(file, c.log_id);
    MMSB_RETURN_IF_ERROR(out.Raw(hdr));
    std::vector<std::uint8_t> scratch;
    for (const TypeDescriptor* t : c.types) {
      scratch.clear();
      log::EncodeTypeDescriptor(*t, scratch);
      MMSB_RETURN_IF_ERROR(out.Record(LogRecordType::kTypeDescriptor, scratch));
    }
    std::uint64_t image_bytes = 0;
    for (const CheckpointPage& p : c.pages) {
      scratch.clear();
      log::EncodePageCreate({p.id, p.bytes.size(), p.location, p.is_static, std::string(p.name),
                             std::string(p.type_name)},
                            scratch);
      MMSB_RETURN_IF_ERROR(out.Record(LogRecordType::kPageCreate, scratch));
      for (std::uint64_t off = 0; off < p.bytes.size(); off += log::kImageChunkBytes) {
        const std::size_t n = static_cast<std::size_t>(
            std::min<std::uint64_t>(log::kImageChunkBytes, p.bytes.size() - off));
        MMSB_RETURN_IF_ERROR(out.Image(p.id, p.epoch, off, p.bytes.subspan(off, n)));
      }
      image_bytes += p.bytes.size();
    }
    for (const EdgeInfo& e : c.edges) {
      scratch.clear();
      log::EncodeEdgeChange({EdgeOp::kAdd, e}, scratch);
      MMSB_RETURN_IF_ERROR(out.Record(LogRecordType::kGraphEdge, scratch));
    }
    scratch.clear();
    log::EncodeCheckpointEnd({c.epoch, c.unix_nanos, c.page_id_high, c.pages.size(), c.types.size(),
                              c.edges.size(), image_bytes},
                             scratch);
    MMSB_RETURN_IF_ERROR(out.Record(LogRecordType::kCheckpointEnd, scratch));
    MMSB_RETURN_IF_ERROR(out.Drain());
    if (options.sync) MMSB_RETURN_IF_ERROR(file->Sync());
    return file->Close();
  }();
  const std::uint64_t size = file->Size();
  f->reset();
  if (!s.ok()) {
    (void)env->RemoveFile(tmp);
    return s.WithContext(fmt::format("writing checkpoint '{}'", path));
  }
  MMSB_RETURN_IF_ERROR(env->RenameFile(tmp, path));
  if (options.sync) MMSB_RETURN_IF_ERROR(env->SyncDir(DirOf(path)));
  return size;
}

namespace {

// Loads a checkpoint, or with keep_bytes false only checks it (no page memory is allocated).
Expected<LogState> ReadCheckpoint(const std::string& path, const CheckpointLoadOptions& options,
                                  bool keep_bytes) {
  Env* env = options.env ? options.env : Env::Default();
  auto f = env->NewMappedFile(path);  // checkpoints are replaced by rename, never truncated
  if (!f.ok()) return f.status();
  log::RecordReader rr(f->get(), path);
  log::FileHeader h;
  MMSB_RETURN_IF_ERROR(rr.ReadHeader(&h));
  if (!h.checkpoint) return Corruption(fmt::format("{}:0: not a checkpoint (segment magic)", path));
  if (options.expect_log_id != 0 && h.log_id != options.expect_log_id) {
    return Corruption(fmt::format("{}:16: checkpoint belongs to another log", path));
  }
  const std::uint64_t max_total = log::EffectiveMemoryLimit(options.max_total_bytes);
  LogState st;
  st.epoch = h.base_epoch;
  st.page_id_high = h.base_page_id;
  std::uint64_t total = 0, image_bytes = 0;
  ReplayedPage* filling = nullptr;  // the page whose image chunks come next
  std::uint64_t filling_size = 0;
  std::uint64_t filled = 0;
  std::set<std::pair<PageId, PageId>> edge_keys;
  std::map<PageId, std::uint64_t> sizes;  // page sizes, also when the bytes are not kept
  bool ended = false;
  auto bad = [&](std::uint64_t off, std::string m) {
    return Corruption(fmt::format("{}:{}: checkpoint: {}", path, off, m));
  };
  auto finish_page = [&](std::uint64_t off) -> Status {
    if (filling != nullptr && filled != filling_size) {
      return bad(off, fmt::format("page {} has {} of its {} image bytes", filling->id, filled,
                                  filling_size));
    }
    filling = nullptr;
    filled = 0;
    return Status::Ok();
  };
  for (;;) {
    log::RecordReader::Record rec;
    log::RecordReader::Damage dmg;
    Status io;
    const auto r = rr.Next(&rec, &dmg, &io);
    if (r == log::RecordReader::Result::kEnd) break;
    if (r == log::RecordReader::Result::kError) return io;
    if (r == log::RecordReader::Result::kDamage) {
      return bad(dmg.offset, fmt::format("{} bytes are not a valid record{}", dmg.length,
                                         dmg.torn_tail ? " (truncated file)" : ""));
    }
    if (ended) return bad(rec.offset, "records after the checkpoint-end record");
    const auto type = static_cast<LogRecordType>(rec.type);
    Status ds;
    switch (type) {
      case LogRecordType::kTypeDescriptor: {
        auto t = std::make_shared<TypeDescriptor>();
        ds = log::DecodeTypeDescriptor(rec.payload, t.get());
        if (ds.ok()) st.types[t->name] = std::move(t);
        break;
      }
      case LogRecordType::kPageCreate: {
        MMSB_RETURN_IF_ERROR(finish_page(rec.offset));
        LogPageCreate pc;
        ds = log::DecodePageCreate(rec.payload, &pc);
        if (!ds.ok()) break;
        if (pc.size > options.max_page_bytes)
          return bad(rec.offset,
                     fmt::format("page {} of {} bytes exceeds the limit", pc.id, pc.size));
        if (keep_bytes && pc.size > max_total - total)
          return bad(rec.offset, "pages exceed the memory limit");
        if (st.pages.count(pc.id))
          return bad(rec.offset, fmt::format("page {} appears twice", pc.id));
        total += pc.size;
        ReplayedPage& p = st.pages[pc.id];
        p.id = pc.id;
        p.name = std::move(pc.name);
        p.location = pc.location;
        p.is_static = pc.is_static;
        p.type_name = std::move(pc.type_name);
        if (auto it = st.types.find(p.type_name); it != st.types.end()) p.type = it->second;
        if (keep_bytes) p.bytes.resize(pc.size);
        sizes[pc.id] = pc.size;
        filling = &p;
        filling_size = pc.size;
        break;
      }
      case LogRecordType::kPageImage: {
        LogImageChunk c;
        ds = log::DecodePageImageChunk(rec.payload, &c);
        if (!ds.ok()) break;
        if (filling == nullptr || c.page != filling->id)
          return bad(rec.offset, fmt::format("image chunk of page {} out of place", c.page));
        if (c.offset != filled || c.bytes.size() > filling_size - filled) {
          return bad(rec.offset,
                     fmt::format("image chunk of page {} at offset {} does not continue at {}",
                                 c.page, c.offset, filled));
        }
        if (keep_bytes && !c.bytes.empty())
          std::memcpy(filling->bytes.data() + filled, c.bytes.data(), c.bytes.size());
        filled += c.bytes.size();
        filling->epoch = c.epoch;
        filling->changed = true;
        image_bytes += c.bytes.size();
        break;
      }
      case LogRecordType::kGraphEdge: {
        MMSB_RETURN_IF_ERROR(finish_page(rec.offset));
        LogEdgeChange e;
        ds = log::DecodeEdgeChange(rec.payload, &e);
        if (!ds.ok()) break;
        if (e.op != EdgeOp::kAdd) return bad(rec.offset, "edge removal in a checkpoint");
        if (!st.pages.count(e.edge.parent) || !st.pages.count(e.edge.child)) {
          return bad(rec.offset, fmt::format("edge {} -> {} names a page not in the checkpoint",
                                             e.edge.parent, e.edge.child));
        }
        if (!edge_keys.insert({e.edge.child, e.edge.parent}).second)
          return bad(rec.offset, "duplicate edge");
        // Replay copies bytes along recompute-on-replay edges: they must fit their pages.
        const std::string why =
            log::CheckRecomputeEdge(e.edge, sizes[e.edge.parent], sizes[e.edge.child]);
        if (!why.empty()) return bad(rec.offset, why);
        st.edges.push_back(e.edge);
        break;
      }
      case LogRecordType::kCheckpointEnd: {
        MMSB_RETURN_IF_ERROR(finish_page(rec.offset));
        LogCheckpointEnd e;
        ds = log::DecodeCheckpointEnd(rec.payload, &e);
        if (!ds.ok()) break;
        if (e.epoch != st.epoch || e.pages != st.pages.size() || e.types != st.types.size() ||
            e.edges != st.edges.size() || e.image_bytes != image_bytes ||
            e.page_id_high != st.page_id_high) {
          return bad(rec.offset,
                     "the checkpoint-end record's counts do not match the records before it");
        }
        st.unix_nanos = e.unix_nanos;
        ended = true;
        break;
      }
      default:
        // A record type this reader does not know: skipped, like in a segment.
        if (rec.type >= 1 && rec.type <= 10)
          return bad(rec.offset,
                     fmt::format("a {} record in a checkpoint", LogRecordTypeName(type)));
        break;
    }
    if (!ds.ok()) return bad(rec.offset, ds.message());
  }
  if (!ended) return bad(rr.file_size(), "no checkpoint-end record (truncated or unfinished)");
  std::sort(st.edges.begin(), st.edges.end(), [](const EdgeInfo& a, const EdgeInfo& b) {
    return std::tie(a.child, a.parent) < std::tie(b.child, b.parent);
  });
  return st;
}

}  // namespace

Expected<LogState> LoadCheckpoint(const std::string& path, const CheckpointLoadOptions& options) {
  return ReadCheckpoint(path, options, true);
}

Expected<std::string> WriteLogCheckpoint(LogWriter& writer, CheckpointContents contents,
                                         const CheckpointOptions& options) {
  if (contents.epoch > writer.last_epoch()) {
    return InvalidArgument(fmt::format("checkpoint epoch {} is not committed (log is at {})",
                                       contents.epoch, writer.last_epoch()));
  }
  // The epochs a checkpoint covers must be durable before it can replace them.
  MMSB_RETURN_IF_ERROR(writer.Sync());
  contents.log_id = writer.log_id();
  const std::string name = log::CheckpointFileName(contents.epoch);
  const std::string path = JoinPath(writer.dir(), name);
  CheckpointOptions o = options;
  if (o.env == nullptr) o.env = writer.options().env;
  auto size = WriteCheckpointFile(path, contents, o);
  if (!size.ok()) return size.status();
  if (writer.options().retire_segments) {
    // Never retire segments on the word of a checkpoint that does not read back.
    CheckpointLoadOptions lo;
    lo.env = o.env;
    lo.expect_log_id = writer.log_id();
    auto back = ReadCheckpoint(path, lo, false);
    if (!back.ok()) return back.status().WithContext("checkpoint did not read back; segments kept");
  }
  MMSB_RETURN_IF_ERROR(writer.NoteCheckpoint(contents.epoch, name));
  return path;
}

}  // namespace mmsb
