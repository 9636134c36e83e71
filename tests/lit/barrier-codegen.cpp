// The store-then-mark barrier's generated code (docs/PluginGuide.md, "The store-then-mark
// barrier's code"), checked in the -O2 IR of rewritten stores:
//   - invariant 1: each data store is followed by an asm that reads the stored object and yields
//     the mark's granule index, and the mark (a byte store of 1) goes through the shadow at that
//     index;
//   - invariant 2: the asm is read-only (memory(read)), so the tracked range's globals are loaded
//     once before a loop of barriered stores, not after every store (the `asm volatile` with an
//     "=m" output reloaded them), and a helper with two barriers still inlines into its loop;
//   - invariant 3: one range check per store: the store's granule index (its offset from the
//     range's base, shifted) is compared once with the span's granule count, and a miss goes
//     straight on (no second compare against a static window; no barrier reads g_static_region
//     at all);
//   - invariant 4: the straddle test's common path is one test of the address's alignment (low
//     bits zero: the object lies in one granule); only a misaligned address takes the exact test,
//     and a straddling store marks the next granule too.
// RUN: %cxx -O2 -S -emit-llvm -fno-discard-value-names -I%mmsb_include %s -o - \
// RUN:   | FileCheck %s --implicit-check-not=g_static_region
#include <cstdint>

struct [[mmsb::page]] P {
  float x[1024];
  float v[1024];
};

// A scatter through an index: no range mark, a barrier per store.
// CHECK-LABEL: define {{.*}}@_Z7ScatterP1PPKjif(
// CHECK: [[BASE:%[0-9]+]] = load i64, ptr @_ZN4mmsb2rt8g_regionE
// CHECK-NEXT: [[SPAN:%[0-9]+]] = load i64, ptr getelementptr inbounds (i8, ptr @_ZN4mmsb2rt8g_regionE, i64 8)
// CHECK-NEXT: [[GRANULES:%[a-z.0-9]+]] = lshr i64 [[SPAN]], 6
// CHECK-NEXT: [[SHADOW:%[0-9]+]] = load ptr, ptr getelementptr inbounds (i8, ptr @_ZN4mmsb2rt8g_regionE, i64 16)
// CHECK: {{^}}for.body:
// CHECK-NOT: load i64, ptr {{.*}}_regionE
// CHECK: store float %f, ptr [[DST:%[^,]+]],
// CHECK-NEXT: [[A:%[0-9]+]] = ptrtoint ptr [[DST]] to i64
// CHECK-NEXT: [[OFF:%[a-z.0-9]+]] = sub i64 [[A]], [[BASE]]
// CHECK-NEXT: [[G:%[a-z.0-9]+]] = lshr i64 [[OFF]], 6
// CHECK-NEXT: [[IN:%[a-z.0-9]+]] = icmp ult i64 [[G]], [[GRANULES]]
// CHECK-NEXT: br i1 [[IN]], label %[[MARK:[a-z.0-9]+]], label %[[NEXT:[A-Za-z0-9._]+]]
// CHECK: {{^}}[[MARK]]:
// CHECK-NEXT: [[M:%[0-9]+]] = tail call i64 asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[DST]], i64 [[G]]) [[RO:#[0-9]+]]
// CHECK-NEXT: [[AT:%[a-z.0-9]+]] = getelementptr inbounds i8, ptr [[SHADOW]], i64 [[M]]
// CHECK-NEXT: store i8 1, ptr [[AT]]
// CHECK-NEXT: [[LOW:%[a-z.0-9]+]] = and i64 [[A]], 3
// CHECK-NEXT: [[ALIGNED:%[a-z.0-9]+]] = icmp eq i64 [[LOW]], 0
// CHECK-NEXT: br i1 [[ALIGNED]], label %[[NEXT]], label %[[SLOW:[a-z.0-9]+]]
// CHECK: {{^}}[[SLOW]]:
// CHECK-NEXT: [[IN_GRANULE:%[a-z.0-9]+]] = and i64 [[A]], 63
// CHECK-NEXT: [[CROSSES:%[a-z.0-9]+]] = icmp ugt i64 [[IN_GRANULE]], 60
// CHECK-NEXT: br i1 [[CROSSES]], label %[[SECOND:[a-z.0-9]+]], label %[[NEXT]]
// CHECK: {{^}}[[SECOND]]:
// CHECK: [[M2:%[0-9]+]] = tail call i64 asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[DST]], i64 %{{.*}}) [[RO]]
// CHECK-NEXT: [[AT2:%[a-z.0-9]+]] = getelementptr inbounds i8, ptr [[SHADOW]], i64 [[M2]]
// CHECK-NEXT: store i8 1, ptr [[AT2]]
// CHECK-NOT: load i64, ptr {{.*}}_regionE
// The miss path is the next iteration: nothing else is compared.
// CHECK: {{^}}[[NEXT]]:
// CHECK-NEXT: add nuw nsw i64 %indvars.iv, 1
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

// Three stores per iteration (x, then Damp's v and x): each is followed by at most one range
// check before its mark (the third store's address is the first one's, so clang reuses that
// check), and no check is against anything but the one span.
// CHECK-LABEL: define {{.*}}@_Z4BandP1Pi(
// CHECK-NOT: call {{.*}}Damp
// CHECK: [[SPAN2:%[0-9]+]] = load i64, ptr getelementptr inbounds (i8, ptr @_ZN4mmsb2rt8g_regionE, i64 8)
// CHECK-NEXT: [[GRANULES2:%[a-z.0-9]+]] = lshr i64 [[SPAN2]], 6
// CHECK: {{^}}for.body:
// CHECK: store float %{{.*}}, ptr [[X:%arrayidx[0-9]*]],
// CHECK-NOT: asm
// CHECK: icmp ult i64 %{{.*}}, [[GRANULES2]]
// CHECK-NOT: icmp
// CHECK: asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[X]],
// CHECK: store float %{{.*}}, ptr [[V:%arrayidx[0-9]*]],
// CHECK-NOT: asm
// CHECK: icmp ult i64 %{{.*}}, [[GRANULES2]]
// CHECK-NOT: icmp
// CHECK: asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[V]],
// CHECK: store float %{{.*}}, ptr [[X]],
// CHECK-NOT: icmp
// CHECK: asm "", "=r,*m,0{{.*}}"(ptr {{.*}}[[X]],
// CHECK: {{^}}{{[}]}}{{$}}
void Band(P* p, int first) {
  for (int i = first; i < 1024; i += 64) {
    p->x[i] += p->v[i];
    Damp(p, i);
  }
}

// CHECK: attributes [[RO]] = { nounwind memory(read) }
