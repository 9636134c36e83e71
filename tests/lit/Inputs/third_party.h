// A third-party library's header, included from a -isystem directory (tests/lit/Inputs): a system
// header to clang, and no proof that its member functions keep nothing.
#pragma once
namespace tp {
struct Hook;
inline Hook* g_hook;
inline int* g_cursor;
struct Hook {
  int v[4];
  void Attach() { g_hook = this; }
  void Expose() { g_cursor = v + 1; }
  void Set(int k, int x) { v[k & 3] = x; }
  Hook& operator+=(int x) {
    v[0] += x;
    return *this;
  }
  void Unseen();
};
template <class T>
struct Ring {
  T buf[8];
  int head;
  void Push(T x) {
    buf[head & 7] = x;
    ++head;
  }
  void Share() { g_cursor = &buf[0]; }
};
}  // namespace tp
