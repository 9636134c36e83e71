// Placement: objects of page types from `new` and std::make_unique live in the page arena and
// are freed back to it; static page variables (namespace scope, internal linkage, arrays,
// function-local statics, static data members of any access) live in the page section and are
// registered under their mangled names.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "harness.h"

namespace placement {

struct [[mmsb::page]] Account {
  std::int64_t balance;
  std::int32_t ops;
  std::int32_t id;
};

[[mmsb::page]] Account g_accounts[4];
[[mmsb::page]] float g_series[64];
[[mmsb::page]] static std::uint16_t g_internal[8];

class Bank {
 public:
  static void Deposit(int i, std::int64_t v) {
    reserve_.balance -= v;
    g_accounts[i].balance += v;
    ++g_accounts[i].ops;
  }
  static const Account* Reserve() { return &reserve_; }
  [[mmsb::page]] static inline std::int32_t audits = 0;

 private:
  [[mmsb::page]] static Account reserve_;
};
Account Bank::reserve_{1000000, 0, -1};

// Returns a const view: a non-const pointer leaving the function would escape the page.
const std::int32_t* Counter() {
  [[mmsb::page]] static std::int32_t calls = 0;
  ++calls;
  return &calls;
}

}  // namespace placement

using namespace placement;

int main() {
  e2e::Track("g_accounts", &g_accounts);
  e2e::Track("g_series", &g_series);
  e2e::Track("g_internal", &g_internal);
  e2e::Track("reserve", Bank::Reserve());
  e2e::Track("audits", &Bank::audits);
  e2e::EndEpoch();

  // A function-local static page is registered when control first passes its declaration.
  const std::int32_t* calls = Counter();
  e2e::Track("calls", calls);
  Bank::Deposit(1, 250);
  Bank::Deposit(3, 75);
  Bank::audits += 1;
  for (int i = 0; i < 64; i += 7) g_series[i] = static_cast<float>(i) / 2;
  g_internal[5] = 0xBEEF;
  e2e::EndEpoch();

  // Heap pages: new, std::make_unique, delete, unique_ptr reset.
  auto* a = new Account{5, 1, 42};
  auto u = std::make_unique<Account>();
  e2e::Track("a", a);
  e2e::Track("u", u.get());
  u->balance = -9;
  Counter();
  e2e::EndEpoch();
  a->ops += 1;
  u->id = 7;
  e2e::EndEpoch();
  e2e::Untrack(a);
  delete a;
  e2e::Untrack(u.get());
  u.reset(new Account());
  e2e::Track("u2", u.get());
  u->balance = 3;
  e2e::EndEpoch();

  e2e::ExpectPageName(&g_accounts, "_ZN9placement10g_accountsE");
  e2e::ExpectPageName(&g_series, "_ZN9placement8g_seriesE");
  e2e::ExpectPageName(&g_internal, "_ZN9placementL10g_internalE@placement.cc");
  e2e::ExpectPageName(Bank::Reserve(), "_ZN9placement4Bank8reserve_E");
  e2e::ExpectPageName(&Bank::audits, "_ZN9placement4Bank6auditsE");
  e2e::ExpectPageName(calls, "_ZZN9placement7CounterEvE5calls");
  e2e::ExpectField("placement::Account", "ops", offsetof(Account, ops), 4, "i32");
  return e2e::Finish();
}
