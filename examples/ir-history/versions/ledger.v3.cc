// ledger, version 3: the inline helper Clamp() also caps an amount at 1000.00.
// (examples/ir-history/ir-history.sh builds versions 1 to 5 in turn; each changes one thing.)
#include <cstdio>

struct [[mmsb::page]] Ledger {
  long cents[4];
  long total;
};
[[mmsb::page]] Ledger g_ledger;

int TaxRate() { return 25; }  // percent

inline long Clamp(long cents) { return cents < 0 ? 0 : cents > 100000 ? 100000 : cents; }

long Tax(long cents) { return cents * TaxRate() / 100; }

void Post(int account, long cents) {
  g_ledger.cents[account] += Clamp(cents);
  g_ledger.total += Clamp(cents) + Tax(Clamp(cents));
}

void Audit() {
  long sum = 0;
  for (long c : g_ledger.cents) sum += c;
  std::printf("audit: %ld cents posted\n", sum);
}

int main() {
  Post(0, 1000);
  Post(1, -50);
  Post(2, 250000);
  Audit();
  std::printf("total %ld cents\n", g_ledger.total);
}
