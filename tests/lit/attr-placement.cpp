// Attribute placement: misplaced attributes warn and are dropped, never crash. Without the
// plugin, clang 19 only warns about unknown attributes.
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// RUN: %cxx_plain -fsyntax-only -Xclang -verify=plain %s
struct [[mmsb::page]] Ok { int v; };  // plain-warning {{unknown attribute 'page' ignored}}
[[mmsb::page]] int g_ok;              // plain-warning {{unknown attribute 'page' ignored}}
[[mmsb::transaction]] void Tx();      // plain-warning {{unknown attribute 'transaction' ignored}}

enum [[mmsb::page]] E { kA };  // expected-warning {{'page' attribute only applies to classes and variables with static storage duration}} plain-warning {{unknown attribute}}
[[mmsb::transaction]] int g_not_fn;  // expected-warning {{'transaction' attribute only applies to functions}} plain-warning {{unknown attribute}}
struct [[mmsb::transaction]] NotFn {};  // expected-warning {{'transaction' attribute only applies to functions}} plain-warning {{unknown attribute}}
void Params([[mmsb::page]] int p);  // expected-warning {{only applies to classes and variables with static storage duration}} plain-warning {{unknown attribute}}
thread_local Ok g_tls;  // expected-warning {{thread_local 'g_tls' of page type 'Ok' is not tracked [-Wmmsb-untracked]}}

void Locals() {
  [[mmsb::page]] int local = 0;  // expected-warning {{only applies to classes and variables with static storage duration}} plain-warning {{unknown attribute}}
  [[mmsb::page]] static int fine = 0;  // plain-warning {{unknown attribute}}
  [[mmsb::page]] local = 1;  // expected-warning {{only applies to classes and variables with static storage duration}} plain-warning {{unknown attribute}}
  (void)fine;
}
// Arguments are dropped by clang 19 for plugin attributes; the attribute still applies.
struct [[mmsb::page(1)]] WithArgs { int v; };  // plain-warning {{unknown attribute}}
// Repeating the attribute is harmless.
struct [[mmsb::page, mmsb::page]] Twice { int v; };  // plain-warning 2 {{unknown attribute}}
