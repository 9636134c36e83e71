// A TU that mentions MMSB but needs no rewrite (a transaction declared, not defined, here)
// still compiles to exactly what plain clang produces.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %cxx_plain -Wno-unknown-attributes -S -emit-llvm -O1 %s -o %t/plain.ll
// RUN: %cxx -S -emit-llvm -O1 %s -o %t/plugin.ll
// RUN: diff %t/plain.ll %t/plugin.ll
#include <mini_std.h>
[[mmsb::transaction]] void Later();
template <class T> struct Box {
  T v;
  T Get() const { return v; }
};
inline int Triple(int x) { return x * 3; }
int g_counter;
struct Base {
  virtual ~Base();
  virtual int F() { return 1; }
};
Base::~Base() {}
std::string Use(const std::vector<int>& v) {
  std::vector<std::string> out;
  for (int x : v) out.push_back(std::to_string(Triple(x)));
  Box<double> b{1.5};
  g_counter += static_cast<int>(b.Get());
  return out.empty() ? "" : out.front();
}
