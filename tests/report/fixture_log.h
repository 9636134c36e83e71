// A log for the report tests and the report benchmark, written through the public runtime API:
// `pages` Particles pages (x[64] floats, a step counter), an untyped page, and three derived
// pages fed by passthrough, projection and user edges. Epoch e (1-based) sets
// g_particles.x[e % 64] = e / 2 and g_particles.step = e, adds 1 to x[(e * 7) % 64] of page
// "p<e % (pages - 1) + 1>" (when pages > 1) and writes byte e % 4096 of the untyped page.
// Provenance: every epoch divisible by 5 is committed by a plain commit() call in
// WriteFixtureLog, the others by the transaction FixtureStep (a site noted as the rewriter notes
// a [[mmsb::transaction]] function's exit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>

#include "mmsb/mmsb.h"
#include "mmsb/provenance.h"

namespace mmsb::testing {

// What the rewriter emits at a transaction's exit, without the scope: the next commit names
// this function as its transaction.
inline void FixtureStep() {
  rt::NoteCommitSite(CommitProvenance::Kind::kTransaction, std::source_location::current());
}

struct FixtureParticles {
  float x[64];
  std::uint64_t step;
};

inline Status WriteFixtureLog(const std::string& dir, std::uint64_t epochs, int pages) {
  Options opts;
  opts.arena_bytes = std::size_t{1} << 30;
  if (Status s = start(opts); !s.ok()) return s;
  struct Stop {
    ~Stop() { stop(); }
  } stop_at_exit;
  TypeDescriptor t;
  t.name = "Particles";
  t.size = sizeof(FixtureParticles);
  t.align = 8;
  t.fields = {{"x", 0, sizeof(float) * 64, ScalarKind::kF32, 4, {64}, ""},
              {"step", offsetof(FixtureParticles, step), 8, ScalarKind::kU64, 8, {}, ""}};
  auto type = RegisterType(t);
  if (!type.ok()) return type.status();
  LogOptions lo;
  lo.durability = Durability::kNone;
  lo.log_events = false;
  auto sink = AttachLog(dir, lo);
  if (!sink.ok()) return sink.status();
  std::vector<FixtureParticles*> ps;
  std::vector<Page*> page_objs;
  for (int i = 0; i < pages; ++i) {
    PageOptions po;
    po.type = *type;
    po.name = i == 0 ? "g_particles" : "p" + std::to_string(i);
    auto p = CreatePage(sizeof(FixtureParticles), po);
    if (!p.ok()) return p.status();
    page_objs.push_back(*p);
    ps.push_back(reinterpret_cast<FixtureParticles*>((*p)->data()));
  }
  PageOptions raw_opts;
  raw_opts.name = "raw";
  auto raw = CreatePage(4096, raw_opts);
  if (!raw.ok()) return raw.status();
  // Derived pages: a mirror (passthrough), the first 16 x values (projection), a sum (user).
  PageOptions mo;
  mo.type = *type;
  mo.name = "mirror";
  auto mirror = CreatePage(sizeof(FixtureParticles), mo);
  PageOptions ho;
  ho.name = "head";
  auto head = CreatePage(64, ho);
  PageOptions so;
  so.name = "sum";
  auto sum = CreatePage(8, so);
  if (!mirror.ok() || !head.ok() || !sum.ok()) return Internal("fixture: derived pages");
  const PageId root = page_objs[0]->id();
  if (Status s = AddPassthroughEdge(root, (*mirror)->id()); !s.ok()) return s;
  if (Status s = AddProjectionEdge(root, (*head)->id(), {0, 64, 0}); !s.ok()) return s;
  const PageId parents[] = {(*head)->id()};
  Status s = AddUserEdges(parents, (*sum)->id(), [](std::span<const Page* const> in, Page& child) {
    double total = 0;
    const auto* x = reinterpret_cast<const float*>(in[0]->data());
    for (int i = 0; i < 16; ++i) total += x[i];
    std::memcpy(child.data(), &total, sizeof total);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  for (std::uint64_t e = 1; e <= epochs; ++e) {
    *rt::w(&ps[0]->x[e % 64]) = static_cast<float>(e) / 2;
    *rt::w(&ps[0]->step) = e;
    if (pages > 1) *rt::w(&ps[e % (pages - 1) + 1]->x[(e * 7) % 64]) += 1.0f;
    *rt::w(&(*raw)->data()[e % 4096]) = static_cast<std::uint8_t>(e);
    if (e % 5 != 0) FixtureStep();
    if (auto c = commit(); !c.ok()) return c.status();
  }
  return (*sink)->Close();
}

}  // namespace mmsb::testing
