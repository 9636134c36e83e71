// RestoreStaticPages: a restarted program takes its static pages' bytes back from a log.
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "mmsb/barrier.h"
#include "mmsb/mmsb.h"
#include "mmsb/replay.h"

namespace mmsb {

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
