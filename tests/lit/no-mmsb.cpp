// A translation unit that uses no MMSB compiles exactly as without the plugin.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %cxx_plain -S -emit-llvm -O1 %s -o %t/plain.ll
// RUN: %cxx -S -emit-llvm -O1 %s -o %t/plugin.ll
// RUN: diff %t/plain.ll %t/plugin.ll
// RUN: %cxx_plain -Wall -fsyntax-only %s 2> %t/plain.txt
// RUN: %cxx -Wall -fsyntax-only %s 2> %t/plugin.txt
// RUN: diff %t/plain.txt %t/plugin.txt
// RUN: FileCheck %s < %t/plugin.txt
#include <mini_std.h>
template <class T> struct Stack {
  std::vector<T> items;
  void Push(const T& v) { items.push_back(v); }
};
int Sum(const std::string& s) {
  Stack<int> st;
  for (char c : s) st.Push(c);
  // CHECK: warning: unused variable 'x'
  int x;
  return static_cast<int>(st.items.size());
}
