#include "log/log_records.h"

#include <cstring>

#include <fmt/format.h>

#include "core/varint.h"
#include "log/log_format.h"

namespace mmsb::log {
namespace {

class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void U8(std::uint8_t v) { out_.push_back(v); }
  void U16(std::uint16_t v) { Raw(&v, 2); }
  void U32(std::uint32_t v) { Raw(&v, 4); }
  void U64(std::uint64_t v) { Raw(&v, 8); }
  void Str(std::string_view s) {
    U32(static_cast<std::uint32_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  void Var(std::uint64_t v) { varint::Append(out_, v); }

 private:
  std::vector<std::uint8_t>& out_;
};

// Bounds-checked reads from an untrusted payload. The first failure sticks; callers check ok()
// (or the Status from Finish) once at the end, so every field read is safe even after a failure.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> in, const char* what) : in_(in), what_(what) {}
  std::uint8_t U8(const char* field) {
    std::uint8_t v = 0;
    Raw(&v, 1, field);
    return v;
  }
  std::uint16_t U16(const char* field) {
    std::uint16_t v = 0;
    Raw(&v, 2, field);
    return v;
  }
  std::uint32_t U32(const char* field) {
    std::uint32_t v = 0;
    Raw(&v, 4, field);
    return v;
  }
  std::uint64_t U64(const char* field) {
    std::uint64_t v = 0;
    Raw(&v, 8, field);
    return v;
  }
  std::string Str(const char* field) {
    const std::uint32_t n = U32(field);
    if (!ok()) return {};
    if (n > kMaxNameBytes || n > Left()) {
      Fail(fmt::format("{} length {} exceeds the {} bytes left", field, n, Left()));
      return {};
    }
    std::string s(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // A varint (core/varint.h): truncated, too long and overlong ones are refused.
  std::uint64_t Var(const char* field) {
    if (!ok()) return 0;
    std::uint64_t v = 0;
    varint::Error error = varint::Error::kNone;
    const std::uint8_t* const at = in_.data() + pos_;
    const std::uint8_t* const next = varint::Get(at, in_.data() + in_.size(), &v, &error);
    if (next == nullptr) {
      if (error == varint::Error::kTruncated) {
        Fail(fmt::format("truncated at {}", field));
      } else {
        Fail(fmt::format("{} is {}", field, varint::Describe(error)));
      }
      return 0;
    }
    pos_ += static_cast<std::size_t>(next - at);
    return v;
  }
  std::span<const std::uint8_t> Rest() {
    auto r = in_.subspan(pos_);
    pos_ = in_.size();
    return r;
  }
  std::size_t Left() const { return in_.size() - pos_; }
  bool ok() const { return error_.empty(); }
  void Fail(std::string m) {
    if (ok()) error_ = std::move(m);
  }
  Status Finish(bool exact = true) {
    if (ok() && exact && pos_ != in_.size()) {
      Fail(fmt::format("{} trailing bytes", in_.size() - pos_));
    }
    if (ok()) return Status::Ok();
    return Corruption(fmt::format("{} record: {}", what_, error_));
  }

 private:
  void Raw(void* out, std::size_t n, const char* field) {
    if (!ok()) return;
    if (Left() < n) {
      Fail(fmt::format("truncated at {}", field));
      return;
    }
    std::memcpy(out, in_.data() + pos_, n);
    pos_ += n;
  }

  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  const char* what_;
  std::string error_;
};

bool ValidLocation(std::uint8_t v) { return v <= static_cast<std::uint8_t>(Location::kUnified); }

}  // namespace

void EncodePageCreate(const LogPageCreate& r, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(r.id);
  w.U64(r.size);
  w.U8(static_cast<std::uint8_t>(r.location));
  w.U8(r.is_static ? 1 : 0);
  w.U16(0);
  w.Str(r.name);
  w.Str(r.type_name);
}

Status DecodePageCreate(std::span<const std::uint8_t> in, LogPageCreate* r) {
  Reader rd(in, "page-create");
  r->id = rd.U64("page id");
  r->size = rd.U64("size");
  const std::uint8_t loc = rd.U8("location");
  const std::uint8_t flags = rd.U8("flags");
  const std::uint16_t reserved = rd.U16("reserved");
  r->name = rd.Str("name");
  r->type_name = rd.Str("type name");
  if (rd.ok()) {
    if (r->id == kInvalidPageId) rd.Fail("page id 0");
    if (r->size == 0) rd.Fail("page size 0");
    if (!ValidLocation(loc)) rd.Fail(fmt::format("location {} is unknown", loc));
    if ((flags & ~1u) != 0 || reserved != 0) rd.Fail("reserved bits set");
  }
  r->location = static_cast<Location>(ValidLocation(loc) ? loc : 0);
  r->is_static = (flags & 1) != 0;
  return rd.Finish();
}

void EncodePageFree(PageId id, std::vector<std::uint8_t>& out) { Writer(out).U64(id); }

Status DecodePageFree(std::span<const std::uint8_t> in, PageId* id) {
  Reader rd(in, "page-free");
  *id = rd.U64("page id");
  if (rd.ok() && *id == kInvalidPageId) rd.Fail("page id 0");
  return rd.Finish();
}

void EncodeTypeDescriptor(const TypeDescriptor& t, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.Str(t.name);
  w.U32(t.size);
  w.U32(t.align);
  w.U32(static_cast<std::uint32_t>(t.fields.size()));
  for (const FieldDescriptor& f : t.fields) {
    w.Str(f.name);
    w.U32(f.offset);
    w.U32(f.size);
    w.U8(static_cast<std::uint8_t>(f.kind));
    w.U8(0);
    w.U16(0);
    w.U32(f.elem_size);
    w.U32(static_cast<std::uint32_t>(f.extents.size()));
    for (std::uint32_t e : f.extents) w.U32(e);
    w.Str(f.record_type);
  }
}

Status DecodeTypeDescriptor(std::span<const std::uint8_t> in, TypeDescriptor* t) {
  Reader rd(in, "type-descriptor");
  t->name = rd.Str("name");
  t->size = rd.U32("size");
  t->align = rd.U32("align");
  const std::uint32_t nfields = rd.U32("field count");
  // Each field takes at least 24 bytes, so the count is bounded by the payload.
  if (rd.ok() && nfields > rd.Left() / 24)
    rd.Fail(fmt::format("field count {} exceeds the payload", nfields));
  t->fields.clear();
  for (std::uint32_t i = 0; rd.ok() && i < nfields; ++i) {
    FieldDescriptor f;
    f.name = rd.Str("field name");
    f.offset = rd.U32("field offset");
    f.size = rd.U32("field size");
    const std::uint8_t kind = rd.U8("field kind");
    const std::uint8_t pad8 = rd.U8("field padding");
    const std::uint16_t pad16 = rd.U16("field padding");
    f.elem_size = rd.U32("element size");
    const std::uint32_t nextents = rd.U32("extent count");
    if (rd.ok() && nextents > rd.Left() / 4) rd.Fail("extent count exceeds the payload");
    for (std::uint32_t k = 0; rd.ok() && k < nextents; ++k) f.extents.push_back(rd.U32("extent"));
    f.record_type = rd.Str("record type");
    if (rd.ok() && kind > static_cast<std::uint8_t>(ScalarKind::kRecord)) {
      rd.Fail(fmt::format("field '{}' has unknown kind {}", f.name, kind));
    }
    if (rd.ok() && (pad8 != 0 || pad16 != 0)) rd.Fail("reserved bits set");
    f.kind = static_cast<ScalarKind>(kind);
    t->fields.push_back(std::move(f));
  }
  if (rd.ok() && t->name.empty()) rd.Fail("empty type name");
  MMSB_RETURN_IF_ERROR(rd.Finish());
  if (Status s = t->Validate(); !s.ok()) {
    return Corruption(fmt::format("type-descriptor record: type '{}' is not a valid layout: {}",
                                  t->name, s.message()));
  }
  return Status::Ok();
}

void EncodeCommit(const LogCommit& c, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(c.epoch);
  w.U64(c.unix_nanos);
  w.U32(c.record_count);
  w.U32(0);
  w.U64(c.page_id_high);
}

Status DecodeCommit(std::span<const std::uint8_t> in, LogCommit* c) {
  Reader rd(in, "commit");
  c->epoch = rd.U64("epoch");
  c->unix_nanos = rd.U64("time");
  c->record_count = rd.U32("record count");
  const std::uint32_t reserved = rd.U32("reserved");
  c->page_id_high = rd.U64("page id high");
  if (rd.ok() && c->epoch == 0) rd.Fail("epoch 0 is never committed");
  if (rd.ok() && reserved != 0) rd.Fail("reserved bits set");
  return rd.Finish();
}

void EncodeEdgeChange(const LogEdgeChange& e, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U8(static_cast<std::uint8_t>(e.op));
  w.U8(static_cast<std::uint8_t>(e.edge.kind));
  w.U8(static_cast<std::uint8_t>(e.edge.policy));
  w.U8(0);
  w.U32(0);
  w.U64(e.edge.parent);
  w.U64(e.edge.child);
  w.U32(e.edge.projection.src_offset);
  w.U32(e.edge.projection.length);
  w.U32(e.edge.projection.dst_offset);
  w.U32(0);
}

Status DecodeEdgeChange(std::span<const std::uint8_t> in, LogEdgeChange* e) {
  Reader rd(in, "graph-edge");
  const std::uint8_t op = rd.U8("op");
  const std::uint8_t kind = rd.U8("kind");
  const std::uint8_t policy = rd.U8("policy");
  const std::uint8_t r8 = rd.U8("reserved");
  const std::uint32_t r32 = rd.U32("reserved");
  e->edge.parent = rd.U64("parent");
  e->edge.child = rd.U64("child");
  e->edge.projection.src_offset = rd.U32("source offset");
  e->edge.projection.length = rd.U32("length");
  e->edge.projection.dst_offset = rd.U32("destination offset");
  const std::uint32_t r32b = rd.U32("reserved");
  if (rd.ok()) {
    if (op != 1 && op != 2) rd.Fail(fmt::format("op {} is unknown", op));
    if (kind > static_cast<std::uint8_t>(EdgeKind::kUser))
      rd.Fail(fmt::format("edge kind {} is unknown", kind));
    if (policy > static_cast<std::uint8_t>(DerivedPolicy::kRecomputeOnReplay))
      rd.Fail("policy is unknown");
    if (kind == static_cast<std::uint8_t>(EdgeKind::kUser) && policy != 0) {
      rd.Fail("a user edge cannot be recomputed on replay");
    }
    if (r8 != 0 || r32 != 0 || r32b != 0) rd.Fail("reserved bits set");
    if (e->edge.parent == kInvalidPageId || e->edge.child == kInvalidPageId) rd.Fail("page id 0");
  }
  e->op = op == 2 ? EdgeOp::kRemove : EdgeOp::kAdd;
  e->edge.kind = static_cast<EdgeKind>(kind <= 2 ? kind : 0);
  e->edge.policy = static_cast<DerivedPolicy>(policy <= 1 ? policy : 0);
  return rd.Finish();
}

void EncodeEvent(Epoch epoch, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(epoch);
  w.Raw(bytes.data(), bytes.size());
}

Status DecodeEvent(std::span<const std::uint8_t> in, Epoch* epoch,
                   std::span<const std::uint8_t>* bytes) {
  Reader rd(in, "event");
  *epoch = rd.U64("epoch");
  *bytes = rd.Rest();
  return rd.Finish();
}

void EncodeCheckpointMarker(const LogCheckpointMarker& m, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(m.epoch);
  w.Str(m.file);
}

Status DecodeCheckpointMarker(std::span<const std::uint8_t> in, LogCheckpointMarker* m) {
  Reader rd(in, "checkpoint-marker");
  m->epoch = rd.U64("epoch");
  m->file = rd.Str("file name");
  if (rd.ok() && (m->file.empty() || m->file.find('/') != std::string::npos)) {
    rd.Fail("file name must be a plain name");
  }
  return rd.Finish();
}

void EncodeRunStart(const LogRunStart& r, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(r.epoch_base);
  w.U64(r.page_id_base);
  w.U64(r.unix_nanos);
  w.U32(r.pid);
  w.U32(0);
}

Status DecodeRunStart(std::span<const std::uint8_t> in, LogRunStart* r) {
  Reader rd(in, "run-start");
  r->epoch_base = rd.U64("epoch base");
  r->page_id_base = rd.U64("page id base");
  r->unix_nanos = rd.U64("time");
  r->pid = rd.U32("pid");
  if (rd.U32("reserved") != 0 && rd.ok()) rd.Fail("reserved bits set");
  return rd.Finish();
}

void EncodeRecompute(const LogRecompute& r, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U32(r.pages);
  w.U32(0);
}

Status DecodeRecompute(std::span<const std::uint8_t> in, LogRecompute* r) {
  Reader rd(in, "recompute");
  r->pages = rd.U32("pages");
  if (rd.U32("reserved") != 0 && rd.ok()) rd.Fail("reserved bits set");
  return rd.Finish();
}

void EncodeSite(const LogSite& s, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U32(s.id);
  w.U8(static_cast<std::uint8_t>(s.kind));
  w.U8(0);
  w.U16(0);
  w.U32(s.line);
  w.Str(s.function);
  w.Str(s.file);
}

Status DecodeSite(std::span<const std::uint8_t> in, LogSite* s) {
  Reader rd(in, "site");
  s->id = rd.U32("site id");
  const std::uint8_t kind = rd.U8("kind");
  const std::uint8_t r8 = rd.U8("reserved");
  const std::uint16_t r16 = rd.U16("reserved");
  s->line = rd.U32("line");
  s->function = rd.Str("function");
  s->file = rd.Str("file");
  if (rd.ok()) {
    if (s->id == 0) rd.Fail("site id 0");
    if (kind != 1 && kind != 2) rd.Fail(fmt::format("site kind {} is unknown", kind));
    if (r8 != 0 || r16 != 0) rd.Fail("reserved bits set");
  }
  s->kind = kind == 2 ? LogSite::Kind::kCommitCall : LogSite::Kind::kTransaction;
  return rd.Finish();
}

std::size_t CommitInfoSize(const LogCommitInfo& c) {
  std::size_t n = 1 + (c.state_hash != 0 ? 8 : 0) + varint::Size(c.transactions.size());
  for (const LogCommitTransaction& t : c.transactions) {
    n += varint::Size(t.site) + varint::Size(t.thread) + varint::Size(t.sequence);
  }
  return n;
}

void EncodeCommitInfoAt(const LogCommitInfo& c, std::uint8_t* p) {
  // The compact form: one transaction (the common case) is 5 to 10 bytes.
  *p++ = c.state_hash != 0 ? 1 : 0;
  if (c.state_hash != 0) {
    std::memcpy(p, &c.state_hash, 8);
    p += 8;
  }
  p = varint::PutAt(p, c.transactions.size());
  for (const LogCommitTransaction& t : c.transactions) {
    p = varint::PutAt(p, t.site);
    p = varint::PutAt(p, t.thread);
    p = varint::PutAt(p, t.sequence);
  }
}

void EncodeCommitInfo(const LogCommitInfo& c, std::vector<std::uint8_t>& out) {
  const std::size_t at = out.size();
  out.resize(at + CommitInfoSize(c));
  EncodeCommitInfoAt(c, out.data() + at);
}

void EncodeFixedCommitInfo(const LogCommitInfo& c, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(c.state_hash);
  w.U32(static_cast<std::uint32_t>(c.transactions.size()));
  w.U32(0);
  for (const LogCommitTransaction& t : c.transactions) {
    w.U32(t.site);
    w.U32(t.thread);
    w.U64(t.sequence);
  }
}

Status DecodeCommitInfo(std::span<const std::uint8_t> in, LogCommitInfo* c) {
  Reader rd(in, "commit-info");
  const std::uint8_t flags = rd.U8("flags");
  if (rd.ok() && flags > 1) rd.Fail("reserved flag bits set");
  c->state_hash = (flags & 1) ? rd.U64("state hash") : 0;
  if (rd.ok() && (flags & 1) && c->state_hash == 0) rd.Fail("state hash flagged but 0");
  const std::uint64_t n = rd.Var("transaction count");
  // Every transaction takes at least 3 bytes, so the count cannot make this allocate more than
  // the payload justifies.
  if (rd.ok() && n > rd.Left() / 3)
    rd.Fail(fmt::format("transaction count {} exceeds the payload", n));
  c->transactions.clear();
  for (std::uint64_t i = 0; rd.ok() && i < n; ++i) {
    LogCommitTransaction t;
    const std::uint64_t site = rd.Var("site");
    const std::uint64_t thread = rd.Var("thread");
    t.sequence = rd.Var("sequence");
    if (rd.ok() && (site > 0xFFFFFFFFu || thread > 0xFFFFFFFFu))
      rd.Fail("site or thread exceeds 32 bits");
    t.site = static_cast<std::uint32_t>(site);
    t.thread = static_cast<std::uint32_t>(thread);
    c->transactions.push_back(t);
  }
  return rd.Finish();
}

Status DecodeFixedCommitInfo(std::span<const std::uint8_t> in, LogCommitInfo* c) {
  Reader rd(in, "commit-info");
  c->state_hash = rd.U64("state hash");
  const std::uint32_t n = rd.U32("transaction count");
  if (rd.U32("reserved") != 0 && rd.ok()) rd.Fail("reserved bits set");
  if (rd.ok() && n > rd.Left() / 16)
    rd.Fail(fmt::format("transaction count {} exceeds the payload", n));
  c->transactions.clear();
  for (std::uint32_t i = 0; rd.ok() && i < n; ++i) {
    LogCommitTransaction t;
    t.site = rd.U32("site");
    t.thread = rd.U32("thread");
    t.sequence = rd.U64("sequence");
    c->transactions.push_back(t);
  }
  return rd.Finish();
}

void EncodeBuild(const LogBuild& b, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.Str(b.build_id);
  w.Str(b.executable);
  w.U32(static_cast<std::uint32_t>(b.units.size()));
  w.U32(0);
  for (const LogBuild::Unit& u : b.units) {
    w.Str(u.source);
    w.U64(u.content_hash);
  }
}

Status DecodeBuild(std::span<const std::uint8_t> in, LogBuild* b) {
  Reader rd(in, "build");
  b->build_id = rd.Str("build id");
  b->executable = rd.Str("executable");
  const std::uint32_t n = rd.U32("unit count");
  if (rd.U32("reserved") != 0 && rd.ok()) rd.Fail("reserved bits set");
  if (rd.ok() && n > rd.Left() / 12) rd.Fail(fmt::format("unit count {} exceeds the payload", n));
  b->units.clear();
  for (std::uint32_t i = 0; rd.ok() && i < n; ++i) {
    LogBuild::Unit u;
    u.source = rd.Str("unit source");
    u.content_hash = rd.U64("content hash");
    b->units.push_back(std::move(u));
  }
  return rd.Finish();
}

void EncodeVerifyMiss(const LogVerifyMiss& m, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(m.page);
  w.U32(m.offset);
  w.U32(m.length);
  w.U64(m.after_epoch);
  w.U64(m.epoch);
  w.U8(m.sampled ? 1 : 0);
  w.U8(0);
  w.U16(0);
  w.Str(m.field);
}

Status DecodeVerifyMiss(std::span<const std::uint8_t> in, LogVerifyMiss* m) {
  Reader rd(in, "verify-miss");
  m->page = rd.U64("page id");
  m->offset = rd.U32("offset");
  m->length = rd.U32("length");
  m->after_epoch = rd.U64("after epoch");
  m->epoch = rd.U64("epoch");
  const std::uint8_t flags = rd.U8("flags");
  const std::uint8_t r8 = rd.U8("reserved");
  const std::uint16_t r16 = rd.U16("reserved");
  m->field = rd.Str("field");
  if (rd.ok()) {
    if (m->page == kInvalidPageId) rd.Fail("page id 0");
    if (m->length == 0) rd.Fail("empty byte run");
    if (std::uint64_t{m->offset} + m->length > (std::uint64_t{1} << 32) - 1)
      rd.Fail("byte run past the largest page");
    if (m->after_epoch >= m->epoch) rd.Fail("epoch window is empty");
    if ((flags & ~1u) != 0 || r8 != 0 || r16 != 0) rd.Fail("reserved bits set");
  }
  m->sampled = (flags & 1) != 0;
  return rd.Finish();
}

void EncodePageImagePrefix(PageId id, Epoch epoch, std::uint64_t offset, std::uint8_t* out) {
  Put64(out, id);
  Put64(out + 8, epoch);
  Put64(out + 16, offset);
}

Status DecodePageImageChunk(std::span<const std::uint8_t> in, LogImageChunk* c) {
  Reader rd(in, "page-image");
  c->page = rd.U64("page id");
  c->epoch = rd.U64("epoch");
  c->offset = rd.U64("offset");
  c->bytes = rd.Rest();
  if (rd.ok() && c->page == kInvalidPageId) rd.Fail("page id 0");
  return rd.Finish();
}

void EncodeCheckpointEnd(const LogCheckpointEnd& e, std::vector<std::uint8_t>& out) {
  Writer w(out);
  w.U64(e.epoch);
  w.U64(e.unix_nanos);
  w.U64(e.page_id_high);
  w.U64(e.pages);
  w.U64(e.types);
  w.U64(e.edges);
  w.U64(e.image_bytes);
}

Status DecodeCheckpointEnd(std::span<const std::uint8_t> in, LogCheckpointEnd* e) {
  Reader rd(in, "checkpoint-end");
  e->epoch = rd.U64("epoch");
  e->unix_nanos = rd.U64("time");
  e->page_id_high = rd.U64("page id high");
  e->pages = rd.U64("page count");
  e->types = rd.U64("type count");
  e->edges = rd.U64("edge count");
  e->image_bytes = rd.U64("image bytes");
  return rd.Finish();
}

}  // namespace mmsb::log
