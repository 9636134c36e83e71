// The group validator: checks a whole epoch group against the state before anything changes
// (pages created before use, sizes and bases, the chain of commits), so a group is applied whole
// or dropped whole.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mmsb/replay.h"

#include "log/replayer_impl.h"

namespace mmsb {

std::optional<LogProblem> Replayer::Impl::Validate(const LogCommit& c,
                                                   std::vector<LogProblem>* chain) {
  overlay.Clear();
  bool cleared = false;
  // After a recompute record, a replay-recomputed page may have changed in this epoch, so a
  // commit stage's delta of it may name this epoch as its base.
  bool recomputed = false;
  std::uint64_t alloc = allocated;
  auto lookup = [&](PageId id) -> std::optional<Sim> {
    if (const Sim* s = overlay.Find(id)) {
      if (!s->live) return std::nullopt;
      return *s;
    }
    if (cleared) return std::nullopt;
    auto it = st.pages.find(id);
    if (it == st.pages.end()) return std::nullopt;
    return Sim{true, it->second.bytes.size(), it->second.epoch, it->second.changed, &it->second};
  };
  auto problem = [&](const Op& op, std::string m) {
    return LogProblem{LogProblem::Kind::kInconsistent,
                      FileName(op.file_index),
                      op.offset,
                      0,
                      c.epoch,
                      std::move(m)};
  };
  for (Op& op : group) {
    if (!log::KnownLogType(op.raw_type)) continue;
    switch (op.type) {
      case LogRecordType::kRunStart:
        cleared = true;
        overlay.ForEach([](Sim& s) { s.live = false; });
        alloc = 0;
        break;
      case LogRecordType::kPageCreate: {
        const LogPageCreate& pc = group_creates[op.side_index];
        if (lookup(pc.id))
          return problem(op, fmt::format("page {} is created but already exists", pc.id));
        if (pc.size > opts.max_page_bytes || pc.size > max_total - std::min(alloc, max_total)) {
          return problem(op, fmt::format("page {} of {} bytes exceeds the replay memory limit",
                                         pc.id, pc.size));
        }
        alloc += pc.size;
        overlay.Set(pc.id, {true, pc.size, c.epoch - 1, false, nullptr});
        break;
      }
      case LogRecordType::kPageFree: {
        auto p = lookup(op.freed_page);
        if (!p)
          return problem(op, fmt::format("page {} is freed but does not exist", op.freed_page));
        alloc -= std::min(alloc, p->size);
        overlay.Set(op.freed_page, {false, 0, 0, false, nullptr});
        break;
      }
      case LogRecordType::kGraphEdge: {
        const LogEdgeChange& ec = group_edges[op.side_index];
        if (ec.op != EdgeOp::kAdd) break;
        auto parent = lookup(ec.edge.parent);
        auto child = lookup(ec.edge.child);
        if (!parent || !child) {
          return problem(op, fmt::format("edge {} -> {} names a page that does not exist",
                                         ec.edge.parent, ec.edge.child));
        }
        // Replay copies bytes along a recompute-on-replay edge: it must fit its pages.
        if (std::string why = log::CheckRecomputeEdge(ec.edge, parent->size, child->size);
            !why.empty()) {
          return problem(op, why);
        }
        break;
      }
      case LogRecordType::kRecompute: {
        recomputed = true;
        break;
      }
      case LogRecordType::kDelta: {
        const delta_internal::DeltaView& d = op.delta;
        auto p = lookup(d.page);
        if (!p) return problem(op, fmt::format("delta for page {}, which does not exist", d.page));
        if (d.page_size != p->size) {
          return problem(op, fmt::format("delta for page {} is for {} bytes, the page has {}",
                                         d.page, d.page_size, p->size));
        }
        const bool chained = d.base_epoch == p->epoch || (!p->changed && d.base_epoch == 0) ||
                             (recomputed && d.base_epoch == c.epoch);
        if (!chained) {
          chain->push_back(problem(
              op,
              fmt::format(
                  "delta for page {} follows epoch {}, but the page was last changed in epoch {}",
                  d.page, d.base_epoch, p->epoch)));
        }
        op.target = p->page;
        overlay.Set(d.page, {true, p->size, c.epoch, true, p->page});
        break;
      }
      default:
        break;
    }
  }
  return std::nullopt;
}

}  // namespace mmsb
