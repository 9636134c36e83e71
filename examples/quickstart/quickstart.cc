// Quickstart: create pages, write through the barrier, commit, and print the exact deltas.
// (Once the plugin is in use, the barriers and page allocation are inserted for you.)
#include <cstdio>
#include <memory>

#include "mmsb/mmsb.h"

namespace {

struct Particles {
  float x[256];
  float v[256];
  std::uint64_t step;
};

class PrintingSink : public mmsb::CommitSink {
 public:
  const char* name() const override { return "print"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    std::printf("epoch %llu: %zu page(s) created, %zu delta(s)\n",
                static_cast<unsigned long long>(batch.epoch), batch.created.size(), batch.deltas.size());
    for (const mmsb::Delta& d : batch.deltas) {
      mmsb::Page* page = mmsb::FindPage(d.page());
      std::printf("  page %llu: %u byte(s) changed, %s form, %zu bytes encoded\n",
                  static_cast<unsigned long long>(d.page()), d.changed_bytes(),
                  d.form() == mmsb::Delta::Form::kSparse ? "sparse" : "dense", d.EncodedSize());
      for (const mmsb::ByteRun& r : d.Runs()) {
        std::string where = "+" + std::to_string(r.offset);
        if (page && page->type()) {
          if (auto f = mmsb::ResolveField(*page->type(), r.offset)) where = page->type()->name + "." + f->path;
        }
        std::printf("    %-22s %u byte(s)\n", where.c_str(), r.length);
      }
    }
    return mmsb::Status::Ok();
  }
};

}  // namespace

int main() {
  if (auto s = mmsb::start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  (void)mmsb::AddSink(std::make_shared<PrintingSink>());

  mmsb::TypeDescriptor desc{"Particles", sizeof(Particles), alignof(Particles),
                            {{"x", offsetof(Particles, x), sizeof(float) * 256, mmsb::ScalarKind::kF32, 4, {256}, ""},
                             {"v", offsetof(Particles, v), sizeof(float) * 256, mmsb::ScalarKind::kF32, 4, {256}, ""},
                             {"step", offsetof(Particles, step), 8, mmsb::ScalarKind::kU64, 8, {}, ""}}};
  const mmsb::TypeDescriptor* type = *mmsb::RegisterType(desc);
  mmsb::Page* page = *mmsb::CreatePage(sizeof(Particles), {.type = type, .name = "particles"});
  auto* p = reinterpret_cast<Particles*>(page->data());

  for (int i = 0; i < 256; ++i) *mmsb::rt::w(&p->v[i]) = 0.5f;  // initial velocities
  (void)mmsb::commit();

  for (int step = 0; step < 2; ++step) {
    for (int i = 0; i < 4; ++i) *mmsb::rt::w(&p->x[i]) += p->v[i];  // move four particles
    *mmsb::rt::w(&p->v[3]) = 0.5f;                                  // same value: no delta
    ++*mmsb::rt::w(&p->step);
    (void)mmsb::commit();
  }

  std::printf("\n%s", mmsb::GetStats().ToString().c_str());
  mmsb::stop();
  return 0;
}
