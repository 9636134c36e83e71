// The store-then-mark barrier's generated code (docs/PluginGuide.md, "The store-then-mark
// barrier's code"), checked in the -O2 IR of rewritten stores:
//   - invariant 1: each data store is followed by an asm that reads the stored object and yields
//     the mark's address, and the mark (a byte store of 1) goes through that address;
//   - invariant 2: the asm is read-only (memory(read)), so the region globals are loaded once
//     before a loop of barriered stores, not after every store (the `asm volatile` with an "=m"
//     output reloaded them), and a helper with two barriers still inlines into its loop.
// RUN: %cxx -O2 -S -emit-llvm -fno-discard-value-names -I%mmsb_include %s -o - | FileCheck %s
#include <cstdint>

struct [[mmsb::page]] P {
  float x[1024];
  float v[1024];
};

// A scatter through an index: no range mark, a barrier per store.
// CHECK-LABEL: define {{.*}}@_Z7ScatterP1PPKjif(
// CHECK: load i64, ptr @_ZN4mmsb2rt13g_heap_regionE
// CHECK: {{^}}for.body:
// CHECK-NOT: load i64, ptr {{.*}}_regionE
// CHECK: store float %f, ptr [[DST:%[^,]+]],
// CHECK-NOT: load i64, ptr {{.*}}_regionE
// CHECK: [[M:%[0-9]+]] = tail call ptr asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[DST]], ptr {{.*}}) [[RO:#[0-9]+]]
// CHECK-NEXT: store i8 1, ptr [[M]]
// CHECK-NOT: load i64, ptr {{.*}}_regionE
// CHECK: {{^}}{{[}]}}{{$}}
void Scatter(P* p, const std::uint32_t* idx, int n, float f) {
  for (int i = 0; i < n; ++i) p->x[idx[i]] = f;
}

// examples/particles' shape: a strided loop that calls a helper with two barriered stores. The
// helper is inlined (a call would make the loop reload everything after it).
void Damp(P* p, int i) {
  p->v[i] *= 0.999f;
  p->x[i] *= 0.999f;
}

// CHECK-LABEL: define {{.*}}@_Z4BandP1Pi(
// CHECK-NOT: call {{.*}}Damp
// CHECK: {{^}}{{[}]}}{{$}}
void Band(P* p, int first) {
  for (int i = first; i < 1024; i += 64) {
    p->x[i] += p->v[i];
    Damp(p, i);
  }
}

// CHECK: attributes [[RO]] = { nounwind memory(read) }
