// Atomic builtins write page storage through their pointer operands: each one is marked when
// the operand is evaluated and again at the end of the full-expression, since another operand,
// evaluated in no fixed order, may commit (issue 13, class 3).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] P { long n; int flags; long expected; };
[[mmsb::page]] P g;
[[mmsb::transaction]] long Produce();

long Atomics(P* p, long v) {
  // CHECK: __atomic_store_n(__builtin_addressof(::mmsb::rt::MarkHeld(*(&g.n))), v, __ATOMIC_RELEASE);
  __atomic_store_n(&g.n, v, __ATOMIC_RELEASE);
  // CHECK: __atomic_fetch_add(__builtin_addressof(::mmsb::rt::MarkHeld(*(&p->n))), 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&p->n, 1, __ATOMIC_RELAXED);
  // compare_exchange writes the expected value back on failure.
  // CHECK: __atomic_compare_exchange_n(__builtin_addressof(::mmsb::rt::MarkHeld(*(&g.n))), __builtin_addressof(::mmsb::rt::MarkHeld(*(&g.expected))), v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  __atomic_compare_exchange_n(&g.n, &g.expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  // CHECK: __c11_atomic_fetch_or(__builtin_addressof(::mmsb::rt::MarkHeld(*((_Atomic(int)*)&g.flags))), 4, __ATOMIC_RELAXED);
  __c11_atomic_fetch_or((_Atomic(int)*)&g.flags, 4, __ATOMIC_RELAXED);
  // CHECK: __sync_fetch_and_add(__builtin_addressof(::mmsb::rt::MarkHeld(*(&g.n))), 1);
  __sync_fetch_and_add(&g.n, 1);
  // CHECK: __atomic_fetch_add(__builtin_addressof(::mmsb::rt::MarkHeld(*(&g.n))), Produce(), __ATOMIC_RELAXED);
  __atomic_fetch_add(&g.n, Produce(), __ATOMIC_RELAXED);
  // Loads write nothing.
  // CHECK: return __atomic_load_n(&g.n, __ATOMIC_ACQUIRE);
  return __atomic_load_n(&g.n, __ATOMIC_ACQUIRE);
}
