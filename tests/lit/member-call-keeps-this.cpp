// A member function of a non-page type, called on page storage, may keep its object's address
// (`this`, or a member's) beyond the call, and code the rewriter never sees writes through it
// later. The held mark covers the call only, so such a call escapes the page. It does not when
// this TU has the callee's body and every use of `this` in it is a member read, a store to a
// member (through members and subscripts), a call of a member function that keeps nothing
// either, or `return *this` (system headers alike: held-marks-system-callees.cpp).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %rw %s -- -Rmmsb-escape 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Node;
Node* g_node;
const Node* g_cnode;
int* g_int;
void Take(Node* n);
struct Node {
  int v[4];
  int n;
  struct { int x; } inner;
  void Register() { g_node = this; }
  void RegisterConst() const { g_cnode = this; }
  const Node& operator()() const {
    g_cnode = this;
    return *this;
  }
  int operator[](int i) const { return v[i & 3]; }
  int Get() const { return v[0] + n; }
  void KeepMember() { g_int = &v[1]; }
  void Pass() { Take(this); }
  void Store(int x) {
    v[x & 3] = x;
    n += x;
    ++n;
    inner.x = n;
    this->n = v[0];
  }
  Node& operator+=(int x) {
    n += x;
    return *this;
  }
  void CallsStore() { Store(1); }
  void CallsRegister() { Register(); }
  void Captures() {
    auto f = [this] { n = 1; };
    f();
  }
  void Unseen();
};
struct Plain {
  int k;
  void Set(int x) { k = x; }
};
struct [[mmsb::page]] P {
  Node node;
  Plain plain;
  std::array<int, 4> arr;
};
[[mmsb::page]] P g;

void Calls(P* p) {
  // CHECK: ::mmsb::rt::Escape(&(::g)); ::mmsb::rt::MarkHeld(g.node).Register();
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.node'{{.*}}'Node::Register', which may keep its address
  g.node.Register();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.node).KeepMember();
  g.node.KeepMember();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.node).Pass();
  g.node.Pass();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.node).CallsRegister();
  g.node.CallsRegister();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.node).Captures();
  g.node.Captures();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.node).Unseen();
  g.node.Unseen();
  // CHECK: ::mmsb::rt::Escape(p); ::mmsb::rt::MarkHeld(p->node).Register();
  p->node.Register();
  // A const callee that keeps `this` (a later const_cast may write through it): the escape,
  // and no mark (it writes nothing itself).
  // CHECK: ::mmsb::rt::Escape({{.*}}); g.node.RegisterConst();
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.node'{{.*}}'Node::RegisterConst', which may keep its address
  g.node.RegisterConst();
  // The same through a const operator: the escape, and no mark.
  // CHECK: ::mmsb::rt::Escape({{.*}}); g.node();
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.node'{{.*}}'Node::operator()', which may keep its address
  g.node();
  // A const operator that keeps nothing: neither.
  // CHECK: {{^}}  int k = g.node.Get() + g.node[1];
  int k = g.node.Get() + g.node[1];
  (void)k;
  // Callees that keep nothing: the held mark only.
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.node).Store(2);
  g.node.Store(2);
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.node).CallsStore();
  g.node.CallsStore();
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.plain).Set(3);
  g.plain.Set(3);
  // CHECK: {{^}}  ::mmsb::rt::ws(&(g.node)) += 4;
  g.node += 4;
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.arr).fill(0);
  g.arr.fill(0);
}
