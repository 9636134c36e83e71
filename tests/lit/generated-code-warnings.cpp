// The code the plugin adds (operator new/delete, layout descriptors, registrars) compiles
// quietly under the strictest warning flags: a -Weverything -Werror build stays green.
// RUN: %cxx -fsyntax-only -Weverything -Werror -Wno-c++98-compat -Wno-c++98-compat-pedantic -Wno-padded %s
struct [[mmsb::page]] Inner { short a; double b; };
struct [[mmsb::page]] Outer { Inner in; int n; };
extern Outer g_outer;
[[mmsb::page]] Outer g_outer;
namespace app {
template <class T> struct [[mmsb::page]] Box { T v; };
class Registry {
  [[mmsb::page]] static Outer hidden_;

 public:
  static void Set(int n) { hidden_.n = n; }
};
Outer Registry::hidden_;
}  // namespace app

int Tick();
int Tick() {
  [[mmsb::page]] static int calls = 0;
  g_outer.n = 1;
  auto* b = new app::Box<int>{};
  b->v = 2;
  delete b;
  return ++calls;
}
