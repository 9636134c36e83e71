// Functions whose normalised IR must not change unless they do. See normalize-stability.test.
extern "C" int puts(const char*);
extern "C" int printf(const char*, ...);

struct Vec { float x[8]; int n; };

static const char* Name(int i) { return i ? "one" : "zero"; }

int Loop(Vec* v, int n) {
  int t = 0;
  for (int i = 0; i < n; ++i) { t += v->n * i; v->x[i & 7] += 1.5f; }
  switch (n) { case 1: puts("x"); break; case 2: puts(Name(n)); break; case 7: return 3; }
  return t;
}

int Lambdas(int x) {
  auto add = [x](int y) { return x + y; };
  auto mul = [&x](int y) { return x * y; };
  return add(2) + mul(3);
}

int Statics(int x) {
  static int calls;
  static const char* table[] = {"a", "b", "c"};
  asm volatile("# marker" ::: "memory");
  printf("%s %d\n", table[x % 3], ++calls);
  return calls;
}

int Edited(int x) { return x * 2; }  // EDIT-ME

[[gnu::noinline]] int Tail(int x) { return Lambdas(x) + Statics(x) + Edited(x); }
