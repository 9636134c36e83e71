// Quickstart: mark state [[mmsb::page]], change it in transactions, print each commit's exact delta.
#include <cstdio>
#include "mmsb/mmsb.h"
struct [[mmsb::page]] Counters { std::uint64_t hits[8]; double max; };
[[mmsb::page]] Counters g_counters;  // lives in a page: the plugin barriers every store to it
[[mmsb::transaction]] void Record(int bucket, double x) {  // commits when it returns
  g_counters.hits[bucket] += 1;
  g_counters.max = x > g_counters.max ? x : g_counters.max;  // often stores the same value
}
struct PrintDeltas : mmsb::CommitSink {  // sees every commit's deltas (the log is another sink)
  const char* name() const override { return "print"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    for (const mmsb::Delta& d : batch.deltas) {
      const mmsb::Page* page = mmsb::FindPage(d.page());  // sinks may read pages
      d.ForEachRun([&](std::uint32_t off, std::uint32_t len, const std::uint8_t*) {
        auto f = mmsb::ResolveField(*page->type(), off);  // offset -> field, from the layout
        std::printf("epoch %llu: Counters.%s = %s (%u byte(s) changed)\n", (unsigned long long)batch.epoch,
                    f->path.c_str(), mmsb::FormatScalar(f->kind, page->data() + f->offset, f->size).c_str(), len);
      });
    }
    return {};
  }
};
int main() {
  (void)mmsb::AddSink(std::make_shared<PrintDeltas>());
  Record(3, 1.0);
  Record(3, 0.5);  // hits[3] changes; max stores 1.0 again, so it is not in the delta
  Record(5, 4.0);
}
