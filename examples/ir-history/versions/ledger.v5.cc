// ledger, version 5: Audit() is gone; Refund() takes an amount back.
// (examples/ir-history/ir-history.sh builds versions 1 to 5 in turn; each changes one thing.)
#include <cstdio>

struct [[mmsb::page]] Ledger {
  long cents[4];
  long total;
};
[[mmsb::page]] Ledger g_ledger;

int TaxRate() { return 25; }  // percent

inline long Clamp(long cents) { return cents < 0 ? 0 : cents > 100000 ? 100000 : cents; }

long Levy(long cents) { return cents * TaxRate() / 100; }

void Post(int account, long cents) {
  g_ledger.cents[account] += Clamp(cents);
  g_ledger.total += Clamp(cents) + Levy(Clamp(cents));
}

void Refund(int account, long cents) {
  const long back = cents < g_ledger.cents[account] ? cents : g_ledger.cents[account];
  g_ledger.cents[account] -= back;
  g_ledger.total -= back + Levy(back);
}

int main() {
  Post(0, 1000);
  Post(1, -50);
  Post(2, 250000);
  Refund(0, 400);
  std::printf("total %ld cents\n", g_ledger.total);
}
