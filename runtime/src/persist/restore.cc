// RestoreStaticPages: a restarted program takes its static pages' bytes back from a log.
#include <cstring>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mmsb/barrier.h"
#include "mmsb/mmsb.h"
#include "mmsb/replay.h"

namespace mmsb {
namespace {

using Lookup = std::function<const TypeDescriptor*(std::string_view)>;

std::string Shape(const FieldDescriptor& f) {
  std::string s = f.kind == ScalarKind::kRecord ? f.record_type : ScalarKindName(f.kind);
  if (f.kind != ScalarKind::kRecord && f.elem_size != 0) s += fmt::format("({}B)", f.elem_size);
  for (std::uint32_t e : f.extents) s += fmt::format("[{}]", e);
  return s;
}

bool SameLayout(const TypeDescriptor& a, const Lookup& la, const TypeDescriptor& b,
                const Lookup& lb, int depth);

// Same element type and shape; a nested record compared layout by layout.
bool SameShape(const FieldDescriptor& a, const Lookup& la, const FieldDescriptor& b,
               const Lookup& lb, int depth) {
  if (a.kind != b.kind || a.size != b.size || a.elem_size != b.elem_size || a.extents != b.extents)
    return false;
  if (a.kind != ScalarKind::kRecord) return true;
  if (a.record_type != b.record_type || depth > 16) return false;
  const TypeDescriptor* ra = la(a.record_type);
  const TypeDescriptor* rb = lb(b.record_type);
  if (ra == nullptr || rb == nullptr) return ra == rb;  // both opaque: same name and size
  return SameLayout(*ra, la, *rb, lb, depth + 1);
}

// The full descriptor: size and every field's name, offset and shape.
bool SameLayout(const TypeDescriptor& a, const Lookup& la, const TypeDescriptor& b,
                const Lookup& lb, int depth) {
  if (a.size != b.size || a.fields.size() != b.fields.size()) return false;
  for (std::size_t i = 0; i < a.fields.size(); ++i) {
    if (a.fields[i].name != b.fields[i].name || a.fields[i].offset != b.fields[i].offset ||
        !SameShape(a.fields[i], la, b.fields[i], lb, depth))
      return false;
  }
  return true;
}

struct Migration {
  struct Copy {
    std::uint32_t from = 0, to = 0, size = 0;
  };
  std::vector<Copy> copies;
  std::vector<std::string> moved, added, removed, incompatible;
};

// Matches the program's fields to the log's by name. A field of the same name and shape is
// copied (wherever it moved); a new field keeps the program's value; a field the program no
// longer has is dropped; the same name with another shape cannot be migrated.
Migration Plan(const TypeDescriptor& log, const Lookup& ll, const TypeDescriptor& prog,
               const Lookup& lp) {
  Migration m;
  std::set<std::string> seen;
  for (const FieldDescriptor& pf : prog.fields) {
    const FieldDescriptor* lf = nullptr;
    for (const FieldDescriptor& f : log.fields)
      if (f.name == pf.name) lf = &f;
    if (lf == nullptr) {
      m.added.push_back(pf.name);
      continue;
    }
    seen.insert(pf.name);
    if (!SameShape(*lf, ll, pf, lp, 0)) {
      m.incompatible.push_back(fmt::format("'{}' (log: {} at offset {}, program: {} at offset {})",
                                           pf.name, Shape(*lf), lf->offset, Shape(pf), pf.offset));
      continue;
    }
    if (lf->offset != pf.offset) m.moved.push_back(pf.name);
    m.copies.push_back({lf->offset, pf.offset, pf.size});
  }
  for (const FieldDescriptor& f : log.fields)
    if (!seen.count(f.name)) m.removed.push_back(f.name);
  return m;
}

}  // namespace

Expected<RestoreReport> RestoreStaticPages(const std::string& path, const RestoreOptions& options) {
  if (!started())
    return FailedPrecondition("RestoreStaticPages needs a started bus (call mmsb::start() first)");
  ReplayOptions ro;
  ro.epoch = options.epoch;
  ro.mode = options.mode;
  ro.env = options.env;
  ReplayReport rep;
  auto st = Replay(path, ro, &rep);
  if (!st.ok())
    return st.status().WithContext(fmt::format("restoring static pages from '{}'", path));
  RestoreReport out;
  out.epoch = st->epoch;
  std::set<std::string> in_log;
  for (const auto& [id, p] : st->pages) {
    if (!p.is_static || p.name.empty()) continue;
    in_log.insert(p.name);
    Page* page = FindPageByName(p.name);
    if (page == nullptr || !page->is_static()) {
      out.not_registered.push_back(p.name);
      continue;
    }
    const std::string type = page->type() ? page->type()->name : std::string();
    // Both sides describe their layout: compare the descriptors, not just the sizes (a struct
    // whose fields were reordered keeps its size), and migrate by field name where they differ.
    const TypeDescriptor* log_type = p.type_name.empty() ? nullptr : st->FindType(p.type_name);
    if (log_type != nullptr && page->type() != nullptr && type == p.type_name &&
        log_type->size == p.bytes.size()) {
      const Lookup ll = [&](std::string_view n) { return st->FindType(n); };
      const Lookup lp = [](std::string_view n) { return FindType(n); };
      if (SameLayout(*log_type, ll, *page->type(), lp, 0) && page->size() == p.bytes.size()) {
        std::memcpy(page->data(), p.bytes.data(), p.bytes.size());
        rt::MarkRange(page->data(), page->size());
        out.restored.push_back(p.name);
        continue;
      }
      const Migration m = Plan(*log_type, ll, *page->type(), lp);
      if (!m.incompatible.empty()) {
        out.mismatched.push_back(fmt::format("{} ({} changed incompatibly: field {})", p.name, type,
                                             fmt::join(m.incompatible, ", field ")));
        continue;
      }
      for (const Migration::Copy& c : m.copies) {
        if (c.to + c.size > page->size() || c.from + c.size > p.bytes.size()) continue;
        std::memcpy(page->data() + c.to, p.bytes.data() + c.from, c.size);
      }
      rt::MarkRange(page->data(), page->size());
      std::string what;
      auto list = [&](const char* verb, const std::vector<std::string>& names) {
        if (names.empty()) return;
        what += fmt::format("{}{} {}", what.empty() ? "" : "; ", verb, fmt::join(names, ", "));
      };
      list("moved", m.moved);
      list("added", m.added);
      list("removed", m.removed);
      out.restored.push_back(p.name);
      out.migrated.push_back(fmt::format("{} ({}: {})", p.name, type, what));
      continue;
    }
    if (page->size() != p.bytes.size() ||
        (!type.empty() && !p.type_name.empty() && type != p.type_name)) {
      out.mismatched.push_back(fmt::format("{} (log: {} bytes{}{}, program: {} bytes{}{})", p.name,
                                           p.bytes.size(), p.type_name.empty() ? "" : " of ",
                                           p.type_name, page->size(), type.empty() ? "" : " of ",
                                           type));
      continue;
    }
    std::memcpy(page->data(), p.bytes.data(), p.bytes.size());
    rt::MarkRange(page->data(), page->size());
    out.restored.push_back(p.name);
  }
  for (const PageInfo& info : ListPages()) {
    if (info.is_static && !info.name.empty() && !in_log.count(info.name))
      out.not_in_log.push_back(info.name);
  }
  return out;
}

}  // namespace mmsb
