"""The grammar of generated programs: productions, the shared prelude, and generate()."""

import random

# ---- the grammar -------------------------------------------------------------------------
#
# Every production returns the body of one generated function (a C++ statement list). `r` is
# the program's random.Random; `ctx` collects what the program needs beyond one function (a
# second translation unit, helper declarations). Indices always stay in bounds: the grammar
# generates defined behaviour only, so plain and instrumented builds must agree.

PRELUDE = r"""
#include <array>
#include <atomic>
#include <bitset>
#include <optional>
#include <span>
#include <variant>
#include SUPPORT_INCLUDE

struct Cell { int a; double b; };
// A user type with operator overloads, a member of a page (its operators are not page code).
struct Vec2 {
  int x, y;
  Vec2& operator+=(const Vec2& o) { x += o.x; y += o.y; return *this; }
  Vec2& operator++() { ++x; return *this; }
};
inline Vec2 operator+(Vec2 l, const Vec2& r) { return l += r; }
struct Mat { int m[4][4]; double w; };
// A member function of a non-page type that keeps `this` (called on page storage).
struct Node { int v[4]; void Register(); void RegisterConst() const; const Node& operator()() const; };
struct Bits { unsigned n : 4; unsigned mode : 4; };
union Num { int i; float f; };
// Inheritance: a page's member of a derived type, and a page type with a base class.
struct BaseRec { int base_v[4]; void BumpBase(int x) { base_v[x & 3] += x; } };
struct Derived : BaseRec { int own; };
// A const member function that writes a mutable member.
struct Counter { int v; mutable int reads; int Peek() const { ++reads; return v; } };
struct [[mmsb::page]] S {
  int a[64];
  double m[8][8];
  long long b[32];
  Cell cells[16];
  unsigned lo : 3;
  unsigned mid : 7;
  unsigned hi : 9;
  int level;
  Bits bits;
  Num num;
  std::array<int, 16> arr;
  fid::Acc acc;
  int grid[8][8];
  mutable int cache;
  int sb : 5;
  int sx : 13;
  char name[24];
  Vec2 v2;
  Mat mats[3];
  Node node;
  // A third-party type (fidelity_support.h: a system header in half the programs) whose member
  // functions may keep `this`, and standard value types written through their members.
  fid::Hook hook;
  fid::Ring<int> ring;
  std::optional<int> opt;
  std::variant<int, double> var;
  std::bitset<64> flags;
  Derived der;
  Counter counter;
};
struct [[mmsb::page]] DP : BaseRec { int extra[8]; };
struct PlainLevel { int level : 5; int pad; };

[[mmsb::page]] S g0;
[[mmsb::page]] S g1;
[[mmsb::page]] float g_series[64];
[[mmsb::page]] DP gd;
// Pages of the threaded productions: one per worker thread, and one shared under a mutex.
struct [[mmsb::page]] T { int v[32]; long long n; std::atomic<int> hits; std::atomic<long long> total; };
[[mmsb::page]] T gt0;
[[mmsb::page]] T gt1;
[[mmsb::page]] T gm;
// Pages of static_init_template, one per form (an escape is per page: one form's registrar would
// cover another's loss).
[[mmsb::page]] int gx0[16];
[[mmsb::page]] int gx1[16];
[[mmsb::page]] int gx2[16];
[[mmsb::page]] int gx3[16];
[[mmsb::page]] int gx4[16];
[[mmsb::page]] int gx5[16];
// Page objects on the heap (`new S()`: operator new of a page type), allocated and tracked by
// main before its first commit and never reseated, so the dump follows the same objects.
S* gh = nullptr;
DP* gdh = nullptr;
// Moves a page pointer to another page (a call a loop cannot see through).
void Retarget(S*& p);
int* g_keep = nullptr;
thread_local int* t_slot = nullptr;
std::span<int> g_span;
int g_sink = 0;
Node* g_node = nullptr;
const Node* g_cnode = nullptr;
void Node::Register() { g_node = this; }
void Node::RegisterConst() const { g_cnode = this; }
const Node& Node::operator()() const { g_cnode = this; return *this; }

template <class T>
void SetLevel(T& t, int v) { t.level = v; }
template <class T>
void BumpAll(T* p, int n, int v) { for (int i = 0; i < n; ++i) p[i] += v; }
template <class P>
void Reset(P& p, int v) { p.level = v; for (auto& x : p.a) x = v; p.cells[3].b = v; p.v2 += Vec2{v, v}; }
template <class P>
struct Editor { P& p; void Set(int k, int v) { p.a[k & 63] = v; p.mats[k % 3].m[k & 3][0] = v; } };
// Functions that hand out references into page storage.
int& Slot(S& s, int k) { return s.a[k & 63]; }
int& SlotG(int k) { return g1.a[k & 63]; }
// Declared here, defined after the generated functions: a loop calling it may commit.
void MaybeCommit(int i, int k);

// A destructor (noexcept, as every destructor is by default) that stores to a page.
struct Guard { int k, v; ~Guard() noexcept { g0.a[k & 63] = v; g1.level ^= v; } };

[[mmsb::transaction]] int Produce(int v) {
  fid::Tx tx;
  g1.level += v;
  g1.a[v & 63] = v;
  return v;
}
[[mmsb::transaction]] void TxOwn0(int v) {
  fid::Tx tx;
  gt0.n += v;
  for (int i = 0; i < 8; ++i) gt0.v[(v + i) & 31] ^= v * (i + 1);
}
[[mmsb::transaction]] void TxOwn1(int v) {
  fid::Tx tx;
  gt1.n -= v;
  gt1.v[v & 31] += v;
}
constexpr void FillRow(S& s, int r, int v) { for (int c = 0; c < 8; ++c) s.grid[r][c] = v + c; }
constexpr int RowSum(int v) {
  S s{};
  FillRow(s, 1, v);
  int t = 0;
  for (int c = 0; c < 8; ++c) t += s.grid[1][c];
  return t;
}
static_assert(RowSum(1) == 36);
[[mmsb::transaction]] void Throwing(int v) {
  fid::Tx tx;
  g0.level = v;
  g1.b[v & 31] = v;
  if (v >= 0) throw v;
}
"""


def _v(r):
    return r.randint(1, 1000)


def p_counted_loop(r, ctx):
    lo = r.randint(0, 20)
    hi = r.randint(lo + 1, 64)
    cmp, inc = r.choice([("<", "++i"), ("<", "i++"), ("<", "i += 1")])
    target = r.choice(["g0.a[i]", "g1.a[i]"])
    op = r.choice(["=", "+=", "^="])
    return f"for (int i = {lo}; i {cmp} {hi}; {inc}) {target} {op} (i * {_v(r)}) ^ {_v(r)};"


def p_struct_loop(r, ctx):
    n = r.randint(1, 16)
    return (f"for (int i = 0; i < {n}; ++i) {{ g0.cells[i].a = i + {_v(r)}; "
            f"g0.cells[i].b += i * 0.5; }}")


def p_nested_loop(r, ctx):
    return (f"for (int r = 0; r < 8; ++r) {{ g0.level = r; "
            f"for (int c = 0; c < 8; ++c) g0.grid[r][c] = r * c + {_v(r)}; }}")


def p_identity(r, ctx):
    return f"for (int i = 0; i < 8; ++i) g0.m[i][i] = {_v(r)}.0;"


def p_reused_induction(r, ctx):
    start = r.randint(0, 7)
    return (f"int i = {start}; g_sink += i; "
            f"for (i = 0; i < 8; ++i) g0.m[i][i] = {_v(r)}.5; "
            f"for (i = 0; i < 16; ++i) g1.a[i] = i + {_v(r)};")


def p_shadowed(r, ctx):
    n = r.randint(4, 32)
    return (f"long long* row = g1.b; g_sink += (int)row[0]; "
            f"for (int i = 0; i < {n}; ++i) {{ long long* row = g0.b; row[i] = i * {_v(r)}; }}")


def p_callback_commit(r, ctx):
    n = r.randint(4, 64)
    k = r.randint(0, n - 2)
    return (f"std::function<void()> cb = [] {{ fid::CommitPoint(); }}; "
            f"for (int i = 0; i < {n}; ++i) {{ g0.a[i] = i + {_v(r)}; if (i == {k}) cb(); }}")


def p_loop_commit(r, ctx):
    n = r.randint(4, 64)
    k = r.randint(0, n - 2)
    return f"for (int i = 0; i < {n}; ++i) {{ g1.a[i] = i * {_v(r)}; if (i == {k}) fid::CommitPoint(); }}"


def p_range_for_commit(r, ctx):
    return (f"int k = 0; for (int& x : g0.a) {{ x = {_v(r)} + k; if (++k == {r.randint(1, 60)}) "
            f"fid::CommitPoint(); }}")


def p_thread_commit(r, ctx):
    n = r.randint(2, 6)
    return (f"std::atomic<int> req{{0}}; "
            f"std::thread t([&] {{ for (int k = 0; k < {n}; ++k) {{ while (req.load() != 1) {{}} "
            f"fid::CommitPoint(); req.store(0); }} }}); "
            f"for (int i = 0; i < {n}; ++i) {{ g0.b[i] = i + {_v(r)}; req.store(1); "
            f"while (req.load() != 0) {{}} }} t.join();")


def p_member_call_tx(r, ctx):
    return r.choice([f"g0.acc.Add(Produce({_v(r)}));", f"g0.arr.fill(Produce({_v(r)}));",
                     f"g1.acc.Add({_v(r)}); g1.arr.fill({_v(r)});"])


def p_produce_arg(r, ctx):
    # A transaction (it commits) evaluated as an operand of a store, a call or a library call:
    # whatever marks the destination must come after it (issue 13, class 3).
    lo = r.randint(0, 30)
    hi = r.randint(lo + 1, 64)
    return r.choice([
        f"g0.a[Produce({_v(r)}) & 63] = Produce({_v(r)});",
        f"g1.level = Produce({_v(r)}) + Produce({_v(r)});",
        f"g0.arr[Produce({_v(r)}) & 15] += {_v(r)};",
        f"std::fill(g0.a + {lo}, g0.a + {hi}, Produce({_v(r)}));",
        f"std::swap(g0.a[{lo}], g1.a[Produce({_v(r)}) & 63]);",
        f"SetLevel(g1, Produce({_v(r)}));",
        f"for (int i = {lo}; i < {hi}; ++i) g0.a[i] = Produce(i + {_v(r)});",
        f"g0.cells[Produce({_v(r)}) & 15].b = Produce({_v(r)}) * 0.5;",
        f"g1.acc.Add(Produce({_v(r)}) + Produce({_v(r)}));",
        f"__atomic_fetch_add(&g0.b[{lo & 31}], Produce({_v(r)}), __ATOMIC_RELAXED);",
        f"g1.arr[Produce({_v(r)}) & 15] ^= {_v(r)}; g0.arr[{lo & 15}] = Produce({_v(r)});",
    ])


def p_constexpr(r, ctx):
    # A constexpr function that writes a page type, run at compile time and on a page.
    return (f"constexpr int k = RowSum({_v(r)}); FillRow(g0, {r.randint(0, 7)}, k); "
            f"static_assert(RowSum(2) == 44); g_sink += RowSum({_v(r)});")


def p_threads_own_tx(r, ctx):
    # Two threads, each running its own [[mmsb::transaction]]s on its own page (issue 14).
    n = r.randint(1, 12)
    return (f"std::thread t0([] {{ fid::Worker w; for (int k = 0; k < {n}; ++k) TxOwn0(k + {_v(r)}); }}); "
            f"std::thread t1([] {{ fid::Worker w; for (int k = 0; k < {r.randint(1, 12)}; ++k) "
            f"TxOwn1(k * {_v(r)}); }}); "
            f"for (int k = 0; k < {n}; ++k) g0.a[k & 63] += k; t0.join(); t1.join();")


def p_mutex_shared(r, ctx):
    # Threads writing a shared page under a std::mutex (commutative updates: the final state
    # does not depend on the interleaving), one of them in transactions.
    n = r.randint(1, 16)
    v = _v(r)
    return (f"std::mutex mu; "
            f"auto work = [&](int id) {{ fid::Worker w; for (int k = 0; k < {n}; ++k) {{ "
            f"std::lock_guard<std::mutex> lock(mu); gm.v[(k * 3 + id) & 31] += k + id + {v}; "
            f"gm.n += 1; if (id == 1) TxOwn1(k); }} }}; "
            f"std::thread a(work, 0); std::thread b(work, 1); work(2); a.join(); b.join();")


def p_concurrent_commit(r, ctx):
    # Commits on the main thread while a worker writes pages (no quiescence), then a quiescent
    # commit after the join: nothing the worker wrote may be lost.
    n = r.randint(8, 64)
    return (f"std::atomic<int> done{{0}}; "
            f"std::thread t([&] {{ fid::Worker w; for (int i = 0; i < {n}; ++i) {{ "
            f"gt0.v[i & 31] += i + {_v(r)}; gt0.n ^= i; }} done.store(1); }}); "
            f"while (done.load() == 0) fid::ConcurrentCommit(); t.join();")


def p_asm_store(r, ctx):
    k = r.randint(0, 63)
    return r.choice([
        f'asm volatile("movl %1, %0" : "=m"(g0.a[{k}]) : "r"({_v(r)}));',
        f'asm volatile("addl %1, %0" : "+m"(g1.a[{k}]) : "r"({_v(r)}));',
    ])


def p_extern_decl(r, ctx):
    # The second TU declares the page variable with the attribute (tracked) or without it
    # (the plugin build must then refuse to link).
    ctx.setdefault("tu2", r.choice(["[[mmsb::page]] ", ""]))
    return f"WriteSeries({r.randint(0, 63)}, {_v(r)}.25f);"


def p_binding_bitfield(r, ctx):
    return f"auto& [n, mode] = g0.bits; mode = {r.randint(0, 15)}; n = {r.randint(0, 15)};"


def p_template_bitfield(r, ctx):
    return (f"SetLevel(g0, {_v(r)}); PlainLevel pl{{}}; SetLevel(pl, {r.randint(0, 15)}); "
            f"g_sink += pl.level;")


def p_template_loop(r, ctx):
    return f"BumpAll(g1.a, {r.randint(1, 64)}, {_v(r)}); int local[4] = {{}}; BumpAll(local, 4, 1); g_sink += local[0];"


def p_bitfields(r, ctx):
    return f"g0.lo = {r.randint(0, 7)}; g0.hi += {r.randint(1, 9)}; ++g0.mid; g1.hi = g0.lo;"


def p_range_for(r, ctx):
    return r.choice([f"for (auto& x : g0.a) x += {_v(r)};",
                     f"for (auto& row : g1.grid) for (auto& c : row) c += {_v(r)};",
                     f"for (Cell& c : g1.cells) c.b = {_v(r)}.0;"])


def p_algorithms(r, ctx):
    lo = r.randint(0, 30)
    hi = r.randint(lo + 1, 64)
    return r.choice([
        f"std::fill(g0.a + {lo}, g0.a + {hi}, {_v(r)});",
        f"std::sort(g0.a + {lo}, g0.a + {hi});",
        f"std::reverse(g1.a + {lo}, g1.a + {hi});",
        f"std::iota(g0.a + {lo}, g0.a + {hi}, {_v(r)});",
        f"int tmp[8] = {{{_v(r)}, {_v(r)}, 3, 4, 5, 6, 7, 8}}; std::copy(tmp, tmp + 8, g1.a + {r.randint(0, 56)});",
        f"std::transform(g0.a, g0.a + {hi}, g0.a, [](int x) {{ return x * 3 + 1; }});",
        f"std::swap(g0.a[{lo}], g1.a[{hi - 1}]);",
        f"int n = 0; std::generate(g0.a + {lo}, g0.a + {hi}, [&] {{ if (++n == 2) fid::CommitPoint(); return n + {_v(r)}; }});",
        f"std::for_each(g1.a, g1.a + {hi}, [](int& x) {{ x ^= {_v(r)}; }});",
        f"int tmp[4] = {{{_v(r)}, 2, 3, 4}}; std::memcpy(&g0.a[{r.randint(0, 60)}], tmp, sizeof tmp);",
    ])


def p_pointer_local(r, ctx):
    k = r.randint(0, 62)
    return f"int* p = &g0.a[{k}]; *p = {_v(r)}; p[1] += 2; long long* q = g1.b; q[{r.randint(0, 31)}] = {_v(r)};"


def p_pointer_global(r, ctx):
    return f"g_keep = &g1.a[{r.randint(0, 63)}]; *g_keep = {_v(r)};"


def p_reference_local(r, ctx):
    return f"int& ref = g0.level; ref = {_v(r)}; ref++; double& d = g1.m[{r.randint(0, 7)}][{r.randint(0, 7)}]; d *= 2.0;"


def p_lambda(r, ctx):
    return f"auto f = [&](int v) {{ g0.a[{r.randint(0, 63)}] = v; g1.level -= v; }}; f({_v(r)});"


def p_union(r, ctx):
    return f"g0.num.f = {_v(r)} * 0.5f; g0.num.i ^= 1;"


def p_mutable(r, ctx):
    return r.choice([f"const S& cs = g1; cs.cache = {_v(r)};",
                     f"g_sink += g{r.randint(0, 1)}.counter.Peek();",
                     f"const S& cs = g0; g_sink += cs.counter.Peek() + cs.counter.Peek();"])


def p_tx_throw(r, ctx):
    return f"try {{ Throwing({r.randint(-1, 9)}); }} catch (int) {{ g_sink += 1; }}"


def p_compound(r, ctx):
    return (f"g0.b[{r.randint(0, 31)}] -= {_v(r)}; g0.cells[{r.randint(0, 15)}].b *= 2.0; "
            f"g1.level <<= 1; g_series[{r.randint(0, 63)}] += 1.5f;")


def p_commit(r, ctx):
    return f"g0.level = {_v(r)}; fid::CommitPoint(); g0.level += 1;"


# ---- stores through escapes, aliases and library code (the constructs most likely to lose one)


def p_this_escape(r, ctx):
    # A member function of a non-page type keeps `this` (a page's member) in a global; a later
    # function (after commits) writes through it.
    k = r.randint(0, 3)
    return r.choice([
        f"g{r.randint(0, 1)}.node.Register(); g_node->v[{k}] = {_v(r)};",
        f"g0.node.Register(); fid::CommitPoint(); g_node->v[{k}] += {_v(r)};",
        f"if (g_node) g_node->v[{k}] ^= {_v(r)}; else g1.node.Register();",
        # A const member function keeps `this`; a const_cast writes through it later.
        f"g{r.randint(0, 1)}.node.RegisterConst(); fid::CommitPoint(); "
        f"const_cast<Node*>(g_cnode)->v[{k}] = {_v(r)};",
        # The same through a const operator.
        f"g{r.randint(0, 1)}.node(); fid::CommitPoint(); "
        f"const_cast<Node*>(g_cnode)->v[{k}] ^= {_v(r)};",
    ])


def p_local_pointer_array(r, ctx):
    k, j = r.randint(0, 63), r.randint(0, 63)
    return r.choice([
        f"int* ps[2] = {{&g0.a[{k}], &g1.a[{j}]}}; *ps[0] = {_v(r)}; *ps[1] += {_v(r)};",
        f"int* ps[2] = {{}}; ps[1] = &g0.a[{k}]; *ps[1] = {_v(r)}; ps[1][0] ^= 3;",
        f"struct {{ int* p; int n; }} h{{&g1.a[{k}], 1}}; *h.p = {_v(r)};",
    ])


def p_pointer_to_pointer(r, ctx):
    k = r.randint(0, 63)
    return r.choice([
        f"int* p = &g0.a[{k}]; int** pp = &p; **pp = {_v(r)};",
        f"int* p = &g1.a[{k}]; int*& rp = p; *rp += {_v(r)};",
        f"int local = 0; int* p = &local; int** pp = &p; *pp = &g0.a[{k}]; *p = {_v(r)}; "
        f"g_sink += local;",
        f"long long* q = nullptr; long long** qq = &q; *qq = &g1.b[{k & 31}]; q[0] = {_v(r)};",
    ])


def p_member_pointer(r, ctx):
    return r.choice([
        f"int S::*pm = &S::level; g0.*pm = {_v(r)}; g1.*pm += {_v(r)};",
        f"S* ps = &g{r.randint(0, 1)}; int S::*pm = &S::cache; ps->*pm = {_v(r)};",
        f"double Cell::*pd = &Cell::b; g0.cells[{r.randint(0, 15)}].*pd = {_v(r)}.5;",
    ])


def p_lambda_stored(r, ctx):
    # A lambda capturing page storage by reference (or a pointer into it), stored in a global
    # std::function and called later, from another function (lambda_call).
    ctx.setdefault("decls", {})["g_fn"] = "std::function<void(int)> g_fn;\n"
    k = r.randint(0, 15)
    set_fn = r.choice([
        f"g_fn = [&c = g0.cells[{k}]](int v) {{ c.a += v; c.b = v * 0.25; }};",
        f"g_fn = [p = &g1.a[{r.randint(0, 63)}]](int v) {{ *p = v; }};",
        f"int& ref = g1.level; g_fn = [&ref](int v) {{ ref -= v; }};",
        f"g_fn = [&](int v) {{ g0.a[{r.randint(0, 63)}] ^= v; }};",
    ])
    return set_fn + r.choice(["", f" g_fn({_v(r)});"])


def p_lambda_call(r, ctx):
    ctx.setdefault("decls", {})["g_fn"] = "std::function<void(int)> g_fn;\n"
    return f"if (g_fn) g_fn({_v(r)});"


def p_fnptr_commit(r, ctx):
    # A commit through a function pointer inside a loop (the loop cannot be marked as a whole).
    n = r.randint(4, 64)
    k = r.randint(0, n - 2)
    return r.choice([
        f"void (*cb)() = &fid::CommitPoint; for (int i = 0; i < {n}; ++i) {{ g0.a[i] = i + {_v(r)}; "
        f"if (i == {k}) cb(); }}",
        f"for (int i = 0; i < {n}; ++i) {{ g1.a[i] ^= {_v(r)}; MaybeCommit(i, {k}); }}",
        f"void (*w)(int, int) = &MaybeCommit; int* p = g0.a; for (int i = 0; i < {n}; ++i) "
        f"{{ p[i] = i * {_v(r)}; w(i, {k}); }}",
    ])


def p_pointer_walk(r, ctx):
    lo = r.randint(0, 30)
    hi = r.randint(lo + 1, 64)
    k = r.randint(lo, hi - 1)
    return r.choice([
        f"for (int* q = g0.a + {lo}; q != g0.a + {hi}; ++q) *q = {_v(r)} + int(q - g0.a);",
        f"int* p = g0.a; for (int i = {lo}; i < {hi}; ++i) {{ p[i] = i; if (i == {k}) p = g1.a; }}",
        f"int* p = &g0.a[{lo}]; *p = {_v(r)}; fid::CommitPoint(); p += 3; *p = {_v(r)}; p[-1] ^= 5;",
        f"double* d = &g1.m[0][0]; for (int i = 0; i < 64; i += {r.randint(1, 9)}) d[i] = i * 0.5;",
    ])


def p_struct_assign(r, ctx):
    k, j = r.randint(0, 15), r.randint(0, 15)
    return r.choice([
        f"g0.cells[{k}] = Cell{{{_v(r)}, 1.5}};",
        f"g1.cells[{k}] = g0.cells[{j}];",
        f"g0.bits = Bits{{{r.randint(0, 15)}, {r.randint(0, 15)}}};",
        f"g0.num = Num{{{_v(r)}}};",
        f"g1.mats[{k % 3}] = g0.mats[{j % 3}];",
        f"g0.v2 = {{{_v(r)}, -{_v(r)}}};",
        f"Cell c{{{_v(r)}, 0.25}}; g1.cells[{k}] = c; g1.cells[{j}].a += c.a;",
    ])


def p_whole_page(r, ctx):
    return r.choice([
        "g1 = g0;",
        f"g0 = S{{}}; g0.level = {_v(r)};",
        "std::swap(g0, g1);",
        "std::memcpy(&g1, &g0, sizeof g0);",
        f"S tmp = g0; tmp.level = {_v(r)}; tmp.a[{r.randint(0, 63)}] = 1; g0 = tmp;",
        f"S& s = g{r.randint(0, 1)}; s = g{r.randint(0, 1)}; s.cache = {_v(r)};",
    ])


def p_library_writes(r, ctx):
    lo = r.randint(0, 30)
    n = r.randint(1, 32)
    k = r.randint(0, 63)
    return r.choice([
        f"std::memset(&g0.b[{lo}], 0, {min(n, 32 - lo if lo < 32 else 1)} * sizeof(long long));",
        f"std::memset(g1.grid, {r.randint(0, 127)}, sizeof g1.grid);",
        f"std::memmove(g0.a + 1, g0.a, {n} * sizeof(int));",
        f"std::copy_backward(g0.a, g0.a + {n}, g0.a + {n + 16});",
        f"int tmp[4] = {{{_v(r)}, 2, 3, 4}}; std::copy_backward(tmp, tmp + 4, g1.a + {lo + 4});",
        f"long long tmp[3] = {{{_v(r)}, 5, 6}}; std::move_backward(tmp, tmp + 3, std::end(g0.b));",
        f"std::fill_n(&g0.m[0][0], {r.randint(1, 64)}, {_v(r)}.5);",
        f"std::sort(g0.cells, g0.cells + {r.randint(1, 16)}, [](const Cell& x, const Cell& y) "
        f"{{ return x.a > y.a; }});",
        f"std::ranges::fill(g1.arr, {_v(r)});",
        "std::ranges::sort(g0.a);",
        f"std::snprintf(g0.name, sizeof g0.name, \"v%d\", {_v(r)});",
        f"std::strcpy(g1.name, \"n{_v(r)}\");",
        f"std::sscanf(\"{_v(r)} {_v(r)}\", \"%d %d\", &g0.level, &g1.a[{k}]);",
        f"std::to_chars(g0.name, g0.name + sizeof g0.name, {_v(r)});",
        f"std::uninitialized_fill(g0.a + {lo}, g0.a + {lo + n}, {_v(r)});",
        f"std::copy(g0.cells, g0.cells + {r.randint(1, 8)}, g1.cells + {r.randint(0, 8)});",
        f"std::tie(g0.level, g1.a[{k}]) = std::make_tuple({_v(r)}, {_v(r)});",
        f"std::pair<int&, double&> pr{{g0.cells[{k & 15}].a, g0.cells[{k & 15}].b}}; "
        f"pr.first = {_v(r)}; pr.second = 2.0;",
        f"std::span<int> sp(g0.a); sp[{k}] = {_v(r)}; std::ranges::fill(sp.subspan({lo}, {n}), 7);",
        f"for (int& x : std::span(g1.a).first({n})) x = {_v(r)};",
        f"std::atomic_ref<int>(g0.a[{k}]).fetch_add({_v(r)});",
        f"std::atomic_ref<long long> ar(g1.b[{k & 31}]); ar.store({_v(r)});",
    ])


def p_binding(r, ctx):
    k = r.randint(0, 15)
    return r.choice([
        f"auto& [a, b] = g0.cells[{k}]; a = {_v(r)}; b += 1.0;",
        f"for (auto& [a, b] : g1.cells) {{ a ^= {_v(r)}; b = a * 0.5; }}",
        f"auto& [x, y] = g0.v2; x += {_v(r)}; fid::CommitPoint(); y = x;",
        f"auto [x, y] = g1.v2; g1.level = x + y + {_v(r)};",
        f"auto&& [p, q, s, t] = g1.mats[{k % 3}].m[{k & 3}]; (void)q; (void)s; t = p; p = {_v(r)};",
    ])


def p_identity_struct(r, ctx):
    k = r.randint(0, 2)
    return r.choice([
        "for (int k = 0; k < 3; ++k) for (int i = 0; i < 4; ++i) for (int j = 0; j < 4; ++j) "
        "g0.mats[k].m[i][j] = i == j;",
        f"Mat& mt = g1.mats[{k}]; for (int i = 0; i < 4; ++i) for (int j = 0; j < 4; ++j) "
        f"mt.m[i][j] = (i + j) * {_v(r)}; mt.w = 1.0;",
        f"for (auto& mt : g0.mats) for (auto& row : mt.m) row[{r.randint(0, 3)}] = {_v(r)};",
    ])


def p_operator(r, ctx):
    return r.choice([
        f"g0.v2 += Vec2{{{_v(r)}, 1}};",
        "g1.v2 = g1.v2 + g0.v2;",
        "++g0.v2; ++g1.v2;",
        f"Vec2& v = g1.v2; v += Vec2{{2, {_v(r)}}}; fid::CommitPoint(); ++v;",
    ])


def p_atomic_member(r, ctx):
    return r.choice([
        f"gt0.hits.fetch_add({_v(r)}); gt0.total += {_v(r)};",
        f"gt1.hits++; gt1.total.store({_v(r)});",
        f"int e = gt0.hits.load(); gt0.hits.compare_exchange_strong(e, {_v(r)});",
        f"gt1.hits.exchange({_v(r)}); --gt1.total;",
    ])


def p_placement(r, ctx):
    k = r.randint(0, 15)
    return r.choice([
        f"new (&g0.cells[{k}]) Cell{{{_v(r)}, 2.5}};",
        f"::new (static_cast<void*>(&g1.a[{r.randint(0, 63)}])) int({_v(r)});",
        f"std::construct_at(&g0.v2, Vec2{{{_v(r)}, 3}});",
        f"std::destroy_at(&g1.cells[{k}]); new (&g1.cells[{k}]) Cell{{}};",
    ])


def p_template_page(r, ctx):
    k = r.randint(0, 63)
    return r.choice([
        f"Reset(g{r.randint(0, 1)}, {_v(r)});",
        f"[](auto& p, int v) {{ p.grid[2][3] = v; p.v2 += Vec2{{v, v}}; }}(g0, {_v(r)});",
        f"Editor<S>{{g1}}.Set({k}, {_v(r)});",
    ])


def p_ref_return(r, ctx):
    k = r.randint(0, 63)
    return r.choice([
        f"Slot(g0, {k}) = {_v(r)}; Slot(g1, {k + 1}) += 2;",
        f"SlotG({k}) = {_v(r)};",
        f"int& x = SlotG({k}); fid::CommitPoint(); x ^= {_v(r)};",
    ])


def p_static_local_pointer(r, ctx):
    return f"static int* cached = &g0.a[{r.randint(0, 63)}]; *cached += {_v(r)};"


def p_signed_bits(r, ctx):
    return (f"g0.sb = -({_v(r)} % 16); g0.sx -= {_v(r)}; g0.sx++; g1.sb = g0.sx >> 3; "
            f"g1.sx = g1.sb * {r.randint(1, 99)};")


def p_cast_store(r, ctx):
    k = r.randint(0, 31)
    return r.choice([
        f"reinterpret_cast<unsigned char*>(&g0.level)[1] = {r.randint(0, 255)};",
        f"unsigned char* bytes = reinterpret_cast<unsigned char*>(&g1.b[{k}]); bytes[3] ^= 0x5a;",
        f"*reinterpret_cast<int*>(reinterpret_cast<char*>(&g0) + __builtin_offsetof(S, level)) "
        f"= {_v(r)};",
    ])


def p_union_alias(r, ctx):
    return r.choice([f"g0.num = Num{{.f = {_v(r)}.5f}};",
                     f"Num& n = g1.num; n.i = {_v(r)}; n.f += 1.0f;"])


def p_sys_keep(r, ctx):
    # A member function of a type in a header (a system header in half the programs, as a
    # third-party library under -isystem is) keeps the object's address, a member's, or a span
    # of a member in a global; code run after a commit writes through it. A system header is no
    # proof that a callee keeps nothing: the rewriter checks the body (or escapes the page).
    k = r.randint(0, 3)
    g = f"g{r.randint(0, 1)}"
    return r.choice([
        f"{g}.hook.Attach(); fid::CommitPoint(); fid::g_hook->v[{k}] = {_v(r)};",
        f"{g}.hook.Expose(); fid::g_cursor[{k % 3}] += {_v(r)};",
        f"{g}.hook.View(); fid::CommitPoint(); fid::g_view[{k}] ^= {_v(r)};",
        f"{g}.ring.Share(); fid::CommitPoint(); "
        f"static_cast<fid::Ring<int>*>(fid::g_ring)->buf[{k}] = {_v(r)};",
        f"if (fid::g_hook) fid::g_hook->v[{k}] -= {_v(r)}; else {g}.hook.Attach();",
        f"if (!fid::g_view.empty()) fid::g_view[{k}] += {_v(r)}; else {g}.hook.View();",
        # Callees that keep nothing: the held mark alone.
        f"{g}.hook.Set({k}, {_v(r)}); {g}.ring.Push({_v(r)}); fid::CommitPoint(); "
        f"{g}.ring.Push({_v(r)});",
    ])


def p_std_values(r, ctx):
    # std::optional, std::variant and std::bitset members written through their own members.
    k, j = r.randint(0, 63), r.randint(0, 63)
    g = f"g{r.randint(0, 1)}"
    return r.choice([
        f"{g}.opt.emplace({_v(r)}); *{g}.opt += 3;",
        f"{g}.opt = {_v(r)}; fid::CommitPoint(); {g}.opt.reset();",
        f"if ({g}.opt) {g}.opt.value() ^= {_v(r)}; else {g}.opt.emplace({_v(r)});",
        f"int& x = {g}.opt.emplace({_v(r)}); fid::CommitPoint(); x += {_v(r)};",
        f"g1.opt = g0.opt; g0.opt = std::nullopt;",
        f"{g}.var.emplace<1>({_v(r)} * 0.5); fid::CommitPoint(); {g}.var = {_v(r)};",
        f"{g}.var = {_v(r)}; std::get<0>({g}.var) += 2;",
        f"if (auto* p = std::get_if<1>(&{g}.var)) *p *= 2.0; else {g}.var = {_v(r)}.25;",
        f"std::visit([](auto& x) {{ x += 1; }}, {g}.var);",
        f"{g}.flags.set({k}); {g}.flags.flip({j}); {g}.flags[{(k + j) & 63}] = true;",
        f"{g}.flags <<= {r.randint(1, 9)}; g1.flags ^= g0.flags; {g}.flags.reset({k});",
    ])


def p_std_array(r, ctx):
    # std::array members: fill, swap, operator[] through references and pointers kept across a
    # commit, algorithms on its iterators.
    k, j = r.randint(0, 15), r.randint(0, 15)
    lo = r.randint(0, 7)
    n = r.randint(1, 8)
    g = f"g{r.randint(0, 1)}"
    return r.choice([
        f"{g}.arr.fill({_v(r)}); g0.arr.swap(g1.arr);",
        f"std::swap({g}.arr[{k}], {g}.arr[{j}]); {g}.arr[{j}] += {_v(r)};",
        f"int& x = {g}.arr[{k}]; fid::CommitPoint(); x = {_v(r)};",
        f"std::array<int, 16>& ar = {g}.arr; ar[{k}] = {_v(r)}; fid::CommitPoint(); "
        f"ar.back() = {_v(r)}; ar.front() ^= 1;",
        f"int* d = {g}.arr.data(); fid::CommitPoint(); d[{k}] = {_v(r)};",
        f"std::sort({g}.arr.begin(), {g}.arr.end()); std::reverse(g1.arr.begin(), "
        f"g1.arr.begin() + {n});",
        f"std::iota({g}.arr.rbegin(), {g}.arr.rend(), {_v(r)});",
        f"std::fill_n({g}.arr.begin() + {lo}, {n}, {_v(r)});",
        f"for (auto& x : {g}.arr) x *= 3;",
        f"auto& [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15] = {g}.arr; "
        f"a{k} = {_v(r)}; fid::CommitPoint(); a{j} += 1;",
    ])


def p_inheritance(r, ctx):
    # Stores to a base class through a derived page object and to a derived member through a
    # base reference.
    k = r.randint(0, 3)
    return r.choice([
        f"gd.base_v[{k}] = {_v(r)}; gd.extra[{r.randint(0, 7)}] += 1;",
        f"BaseRec& b = gd; b.base_v[{k}] += {_v(r)}; fid::CommitPoint(); b.base_v[{3 - k}] = 1;",
        f"static_cast<BaseRec*>(&gd)->BumpBase({_v(r)}); gd.BumpBase({_v(r)});",
        f"BaseRec* bp = &g{r.randint(0, 1)}.der; bp->base_v[{k}] = {_v(r)}; bp->BumpBase(3);",
        f"BaseRec& br = g0.der; static_cast<Derived&>(br).own = {_v(r)}; br.base_v[{k}] ^= 5;",
        f"g1.der.BumpBase({_v(r)}); g1.der.own -= 1; Derived& d = g1.der; fid::CommitPoint(); "
        f"d.base_v[{k}] = d.own;",
    ])


def p_control(r, ctx):
    # goto and switch fall-through around stores and commits.
    n = r.randint(2, 32)
    k = r.randint(0, n - 1)
    return r.choice([
        f"switch ({r.randint(0, 4)}) {{ case 0: g0.a[1] = {_v(r)}; [[fallthrough]]; "
        f"case 1: g0.a[2] += {_v(r)}; [[fallthrough]]; case 2: fid::CommitPoint(); "
        f"g0.a[3] = {_v(r)}; break; default: g1.level = {_v(r)}; }}",
        f"int i = 0; again: g0.a[i] = {_v(r)} + i; if (i == {k}) fid::CommitPoint(); "
        f"if (++i < {n}) goto again;",
        f"int i = 0; goto mid; top: g1.a[i] ^= {_v(r)}; mid: if (i++ < {n}) goto top;",
        f"for (int i = 0; i < {n}; ++i) {{ if (i == {k}) goto out; g0.b[i] = i + {_v(r)}; }} "
        f"out: g0.level = {_v(r)};",
        f"int* p = &g1.a[0]; int i = 0; loop: p[i] = i * {_v(r)}; if (i == {k}) "
        f"fid::CommitPoint(); if (++i < {n}) goto loop;",
    ])


def p_dtor_store(r, ctx):
    # A (noexcept) destructor stores to pages, before or after a commit in the same block.
    k = r.randint(0, 63)
    return r.choice([
        f"{{ Guard gu{{{k}, {_v(r)}}}; g0.level = 1; }}",
        f"{{ Guard gu{{{k}, {_v(r)}}}; fid::CommitPoint(); }}",
        f"Guard gu{{{k}, {_v(r)}}}; g1.a[{k}] = 2;",
    ])


def p_thread_local(r, ctx):
    # A thread_local pointer into a page, written through after a commit (also by a later
    # function).
    k = r.randint(0, 63)
    return r.choice([
        f"t_slot = &g0.a[{k}]; fid::CommitPoint(); *t_slot += {_v(r)};",
        f"if (t_slot) *t_slot ^= {_v(r)}; else t_slot = &g1.a[{k}];",
        f"static thread_local int* mine = &g1.a[{k}]; *mine += {_v(r)};",
    ])


def p_view_kept(r, ctx):
    # A std::span of page storage kept in a global and written through later.
    lo = r.randint(0, 31)
    n = r.randint(1, 32)
    return r.choice([
        f"g_span = std::span<int>(g0.a).subspan({lo}, {n}); fid::CommitPoint(); "
        f"g_span[0] = {_v(r)};",
        f"g_span = g1.a; g_span[{lo}] += 1;",
        f"if (!g_span.empty()) g_span[g_span.size() - 1] -= {_v(r)};",
        f"std::span<int> s = g_span; fid::CommitPoint(); if (!s.empty()) s.front() = {_v(r)};",
    ])


def p_lambda_later(r, ctx):
    # Lambdas capturing page storage by reference, run after a commit.
    k = r.randint(0, 63)
    return r.choice([
        f"auto f = [&x = g0.a[{k}]](int v) {{ x = v; }}; fid::CommitPoint(); f({_v(r)});",
        f"int& x = g1.a[{k}]; auto f = [&x](int v) {{ x ^= v; }}; fid::CommitPoint(); f({_v(r)});",
        f"auto f = [&] {{ g1.level += {_v(r)}; }}; fid::CommitPoint(); f(); f();",
        f"auto f = [p = &g0.cells[{k & 15}]]() {{ p->a += 1; }}; f(); fid::CommitPoint(); f();",
    ])



def p_lvalue_forms(r, ctx):
    # Stores whose destination is a conditional, a comma expression or another assignment.
    k, j = r.randint(0, 63), r.randint(0, 63)
    return r.choice([
        f"(g_sink & 1 ? g0.a[{k}] : g1.a[{j}]) = {_v(r)};",
        f"(g_sink++ > 3 ? g0.level : g1.level) += {_v(r)};",
        f"(g_sink += 2, g0.a[{k}]) = {_v(r)};",
        f"g0.a[{k}] = g1.a[{j}] = {_v(r)};",
        f"int& t = (g_sink & 2) ? g1.cells[{k & 15}].a : g0.cells[{j & 15}].a; t *= 3; t += 1;",
        f"++(g_sink & 1 ? g0.b[{k & 31}] : g1.b[{j & 31}]);",
    ])


def p_std_holders(r, ctx):
    # Standard wrappers and containers of the standard library holding a page's addresses,
    # written through after the call that stored them (and across a commit).
    k, j = r.randint(0, 63), r.randint(0, 63)
    return r.choice([
        f"std::vector<int*> v; v.push_back(&g0.a[{k}]); *v[0] = {_v(r)};",
        f"std::vector<int*> v{{&g1.a[{k}]}}; fid::CommitPoint(); *v.back() += {_v(r)};",
        f"std::pair<int*, int> pr{{&g0.a[{k}], 1}}; fid::CommitPoint(); *pr.first = {_v(r)};",
        f"std::tuple<int&, int> t{{g1.a[{k}], 2}}; std::get<0>(t) = {_v(r)};",
        f"std::reference_wrapper<int> rw = std::ref(g0.a[{k}]); fid::CommitPoint(); "
        f"rw.get() ^= {_v(r)};",
        f"std::optional<long long*> op = &g1.b[{k & 31}]; fid::CommitPoint(); **op = {_v(r)};",
        f"int old = std::exchange(g0.level, {_v(r)}); g_sink += old;",
        f"std::swap(g0.a[{k}], g1.a[{j}]);",
        f"struct R {{ int& r; }} rr{{g0.a[{k}]}}; rr.r = {_v(r)};",
    ])


def p_variadic(r, ctx):
    # A page's address passed through a C variadic parameter (or a void*), written by the callee.
    ctx.setdefault("decls", {})["variadic"] = (
        "#include <cstdarg>\n"
        "void VaSet(int n, ...) { va_list ap; va_start(ap, n); for (int i = 0; i < n; ++i) "
        "{ int* p = va_arg(ap, int*); *p += i + 1; } va_end(ap); }\n"
        "void VoidSet(void* p, int v) { *static_cast<int*>(p) = v; }\n")
    k, j = r.randint(0, 63), r.randint(0, 63)
    return r.choice([
        f"VaSet(1, &g0.a[{k}]);",
        f"VaSet(2, &g1.a[{k}], &g0.a[{j}]);",
        f"VoidSet(&g1.a[{k}], {_v(r)});",
        f"void* vp = &g0.a[{k}]; fid::CommitPoint(); VoidSet(vp, {_v(r)});",
    ])


def p_static_init_alias(r, ctx):
    # A namespace-scope pointer or reference initialized with a page's address (a constant
    # initializer, no statement the rewriter visits), written through in a function.
    d = ctx.setdefault("decls", {})
    d["static_init_alias"] = ("int& g_ref_a = g0.a[5];\nint* g_ptr_a = &g1.a[9];\n"
                              "long long* const g_cptr_b = g0.b + 3;\n"
                              "Cell& g_ref_cell = g1.cells[2];\n"
                              # constexpr ones, on a page no other alias here escapes.
                              "constexpr float* g_cexpr_p = &g_series[20];\n"
                              "constexpr float& g_cexpr_r = g_series[30];\n"
                              # Dynamic initialisers: they run before the pages' registrars
                              # (a page of their own, which no constant alias escapes).
                              "int* DynSlot(int k) { return &gd.extra[k & 7]; }\n"
                              "int* g_dyn_a = DynSlot(11);\n"
                              "int& g_dyn_ref = *DynSlot(12);\n")
    return r.choice([
        f"g_ref_a = {_v(r)};",
        f"g_ref_a += {_v(r)}; fid::CommitPoint(); g_ref_a ^= 7;",
        f"*g_ptr_a = {_v(r)};",
        f"g_ptr_a[1] += {_v(r)};",
        f"*g_cptr_b = {_v(r)}; g_cptr_b[2] = 4;",
        f"g_ref_cell.a = {_v(r)}; g_ref_cell.b += 0.5;",
        f"*g_dyn_a = {_v(r)}; fid::CommitPoint(); g_dyn_ref += {_v(r)};",
        f"*g_cexpr_p = {_v(r)}.5f; g_cexpr_p[1] += 1.0f; fid::CommitPoint(); g_cexpr_r = {_v(r)};",
    ])


def p_static_init_template(r, ctx):
    # Variables of static storage in templates (and a static member defined out of its class)
    # constant-initialised with a page's address, written through from elsewhere: each form on
    # a page of its own, declared only when drawn.
    d = ctx.setdefault("decls", {})
    form = r.randint(0, 5)
    k = r.randint(0, 7)
    if form == 0:
        d["sit0"] = ("template <int K> int* XSlot0() { static int* ps[2] = {&gx0[K], &gx0[K + 1]}; "
                     "return ps[1]; }\n")
        return f"*XSlot0<{k}>() += {_v(r)};"
    if form == 1:
        d["sit1"] = "template <class T> struct XBox1 { static inline T* kept = &gx1[5]; };\n"
        return f"*XBox1<int>::kept = {_v(r)}; fid::CommitPoint(); XBox1<int>::kept[1] ^= {_v(r)};"
    if form == 2:
        d["sit2"] = ("template <class T> struct XBox2 { static T* later; };\n"
                     "template <class T> T* XBox2<T>::later = &gx2[6];\n")
        return f"XBox2<int>::later[{k}] = {_v(r)};"
    if form == 3:
        d["sit3"] = "template <class T> T* g_xv = &gx3[7];\n"
        return f"*g_xv<int> -= {_v(r)};"
    if form == 4:
        d["sit4"] = ("template <class T> struct XPair { T* p; T* q; };\n"
                     "template <class T> T* XSlot4() { static XPair<T> pr{&gx4[1], &gx4[2]}; "
                     "return pr.q; }\n")
        return f"XSlot4<int>()[{k}] = {_v(r)};"
    d["sit5"] = "struct XHold { static int* p; };\nint* XHold::p = &gx5[9];\n"
    return f"*XHold::p = {_v(r)}; XHold::p[-{k}] += 1;"


def p_macros(r, ctx):
    # Stores written through macros: the destination an argument, the page inside the macro, a
    # do-while statement macro, a volatile access.
    ctx.setdefault("decls", {})["macros"] = (
        "#define FID_SET(x, v) ((x) = (v))\n"
        "#define FID_INC(x) (++(x))\n"
        "#define FID_G0A(k) g0.a[(k) & 63]\n"
        "#define FID_BUMP(p, n) do { for (int i_ = 0; i_ < (n); ++i_) (p)[i_] += 1; } while (0)\n")
    k, j = r.randint(0, 63), r.randint(0, 63)
    return r.choice([
        f"FID_SET(g0.a[{k}], {_v(r)});",
        f"FID_INC(g1.level); FID_SET(g1.cells[{k & 15}].a, {_v(r)});",
        f"FID_G0A({k}) = {_v(r)}; FID_G0A({j}) += 3;",
        f"FID_BUMP(g1.a + {k & 31}, {r.randint(1, 8)});",
        f"int* p = &g0.a[{k}]; FID_SET(*p, {_v(r)}); fid::CommitPoint(); FID_INC(p[0]);",
        f"volatile int* vp = &g1.a[{k}]; *vp = {_v(r)}; vp[0] += 2;",
    ])

def p_heap(r, ctx):
    # Stores to page objects on the heap, through pointers and references: a mark hoisted out
    # of a loop must follow a base pointer that moves inside it (directly, or through a call).
    k = r.randint(0, 63)
    n = r.randint(1, 64)
    j = r.randint(0, n - 1)
    return r.choice([
        f"gh->a[{k}] = {_v(r)}; gh->cells[{k & 15}].b += 1.5; ++gh->level;",
        f"for (int i = 0; i < {n}; ++i) gh->a[i] = i * {_v(r)};",
        f"for (int i = 0; i < 8; ++i) gh->m[i][i] = {_v(r)}.0;",
        f"S& h = *gh; h.grid[{k & 7}][{k >> 3}] = {_v(r)}; h.v2 += Vec2{{1, 2}}; h.lo = {k & 7};",
        f"Reset(*gh, {_v(r)});",
        f"Slot(*gh, {k}) ^= {_v(r)}; Editor<S>{{*gh}}.Set({k}, {_v(r)});",
        f"gdh->extra[{k & 7}] = {_v(r)}; gdh->BumpBase({_v(r)});",
        f"S* p = gh; for (int i = 0; i < {n}; ++i) {{ p->a[i] = i + {_v(r)}; "
        f"if (i == {j}) p = &g1; }}",
        f"S* p = &g0; for (int i = 0; i < {n}; ++i) {{ p->b[i & 31] += i; if (i == {j}) p = gh; }}",
        f"S* p = gh; for (int i = 0; i < {n}; ++i) {{ p->a[i] ^= {_v(r)}; Retarget(p); }}",
        f"S* p = gh; for (int i = 0; i < {n}; ++i) {{ p->a[i] += i; if (i == {j}) Retarget(p); }}",
        f"for (int i = 0; i < {n}; ++i) {{ gh->a[i] += i; MaybeCommit(i, {j}); }}",
        f"int* q = gh->a; for (int i = 0; i < {n}; ++i) {{ q[i] = {_v(r)}; if (i == {j}) "
        f"fid::CommitPoint(); }}",
        f"S* t = new S(); t->a[{k}] = {_v(r)}; t->level = {_v(r)}; *gh = *t; delete t;",
        f"auto t = std::make_unique<S>(); t->cells[{k & 15}].a = {_v(r)}; "
        f"gh->cells[{k & 15}] = t->cells[{k & 15}];",
        f"std::fill(gh->a, gh->a + {n}, {_v(r)}); g_keep = &gh->a[{k}]; *g_keep += 3;",
        f"for (auto& x : gh->b) x -= {_v(r)}; for (Cell& c : gh->cells) c.a ^= {_v(r)};",
        # An inner loop's mark, hoisted, under an outer loop whose base changes each iteration.
        f"S* ps[3] = {{gh, &g0, gh}}; for (S* p : ps) for (int i = 0; i < {n}; ++i) "
        f"p->a[i] += i + {_v(r)};",
        f"S* ps[2] = {{&g1, gh}}; for (int k = 0; k < 2; ++k) {{ S& s = *ps[k]; "
        f"for (int i = 0; i < 8; ++i) s.grid[i][{k & 7}] = i * {_v(r)}; }}",
    ])


PRODUCTIONS = {name[2:]: fn for name, fn in globals().items() if name.startswith("p_")}

# The defect classes of issue 13 that a failing production points at (rediscovered_classes).
DEFECT_CLASS = {
    "identity": 1, "reused_induction": 1, "shadowed": 1,
    "callback_commit": 2, "loop_commit": 2, "thread_commit": 2, "range_for_commit": 2,
    "member_call_tx": 3, "produce_arg": 3, "asm_store": 4, "extern_decl": 5, "binding_bitfield": 6,
    "template_bitfield": 8,
}

PAGE_VARIABLES = {"g0", "g1", "g_series", "gt0", "gt1", "gm", "gd", "gx0", "gx1", "gx2", "gx3",
                  "gx4", "gx5"}
PAGES = ["g0", "g1", "g_series", "gt0", "gt1", "gm", "gd", "gx0", "gx1", "gx2", "gx3", "gx4",
         "gx5"]

# Productions whose threads commit in an order that is not deterministic: the log has epochs
# that no state of the plain build corresponds to, so the main thread's commits are compared
# as a subsequence of the log's epochs (see compare).
THREADED = {"threads_own_tx", "mutex_shared", "concurrent_commit"}

HEADERS = [
    ("algorithm", ["std::fill", "std::sort", "std::copy_backward", "std::ranges::", "std::reverse", "std::copy", "std::transform",
                   "std::generate", "std::for_each"]),
    ("atomic", ["std::atomic"]), ("cstring", ["std::memcpy", "std::memset", "std::memmove", "std::strcpy"]),
    ("functional", ["std::function", "std::reference_wrapper", "std::ref"]),
    ("numeric", ["std::iota"]), ("thread", ["std::thread"]),
    ("utility", ["std::swap", "std::pair", "std::exchange"]), ("vector", ["std::vector"]),
    ("mutex", ["std::mutex"]), ("memory", ["std::construct_at", "std::destroy_at",
                                          "std::uninitialized_fill"]),
    ("span", ["std::span"]), ("memory", ["std::make_unique", "std::unique_ptr"]), ("variant", ["std::visit", "std::get_if"]), ("tuple", ["std::tie", "std::make_tuple", "std::tuple"]),
    ("charconv", ["std::to_chars"]), ("cstdio", ["std::snprintf", "std::sscanf"]),
]

TU2 = r"""
// The second translation unit: declares the page variable (with or without [[mmsb::page]]).
ATTRIBUTEextern float g_series[64];
void WriteSeries(int k, float v) { g_series[k] = v; g_series[(k + 1) & 63] += v; }
"""


# Heap page objects, tracked after the static pages (fidelity_support.h, TrackHeap).
HEAP_PAGES = [("gh", "S"), ("gdh", "DP")]

MAIN_START = ("int main(int argc, char** argv) {\n" +
              "".join(f"  fid::Track(\"{p}\", &{p}, sizeof {p});\n" for p in PAGES) +
              "".join(f"  {p} = new {t}();\n  fid::TrackHeap(\"{p}\", {p}, sizeof *{p});\n"
                      for p, t in HEAP_PAGES) +
              "  if (fid::Start(argc > 1 ? argv[1] : \"fidelity.log\") != 0) return 1;\n"
              "  fid::CommitPoint();\n")


# The productions generate() draws from (fidelity.py run --productions): all by default.
SELECTED = None

# Defined after the generated functions, so that a loop calling it sees only its declaration.
TAIL = ("void MaybeCommit(int i, int k) { if (i == k) fid::CommitPoint(); }\n"
        "void Retarget(S*& p) { p = p == gh ? &g1 : gh; }\n")


def generate(seed, functions):
    """Returns (sources: {name: text}, productions used in order)."""
    r = random.Random(seed)
    ctx = {}
    system_headers = r.random() < 0.5
    used = []
    bodies = []
    names = sorted(SELECTED or PRODUCTIONS)
    for i in range(functions):
        name = r.choice(names)
        used.append(name)
        bodies.append(f"// {name}\nvoid f{i}() {{ {PRODUCTIONS[name](r, ctx)} }}\n")
    include = "<fidelity_support.h>" if system_headers else '"fidelity_support.h"'
    # Only the headers the chosen productions need: compile time is most of a program's cost.
    # (and the declarations they add: lambda_call alone declares a std::function)
    text = "".join(bodies) + "".join(ctx.get("decls", {}).values())
    headers = [h for h, needles in HEADERS if any(n in text for n in needles)]
    main = [f"// Generated by tests/fidelity/fidelity.py, seed {seed}.\n"
            f"// MMSB headers as {'system' if system_headers else 'user'} headers.\n",
            "".join(f"#include <{h}>\n" for h in headers),
            PRELUDE.replace("SUPPORT_INCLUDE", include)]
    if "tu2" in ctx:
        main.append("void WriteSeries(int k, float v);\n")
    main.extend(ctx.get("decls", {}).values())
    main.extend(bodies)
    main.append(TAIL)
    main.append(MAIN_START)
    for i in range(functions):
        main.append(f"  f{i}(); fid::CommitPoint();\n")
    main.append("  return fid::Finish();\n}\n")
    sources = {"prog.cc": "".join(main)}
    if "tu2" in ctx:
        sources["tu2.cc"] = TU2.replace("ATTRIBUTE", ctx["tu2"])
    return sources, used, system_headers
