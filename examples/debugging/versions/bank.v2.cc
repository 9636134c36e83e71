// bank: an account that takes deposits and withdrawals, each a [[mmsb::transaction]]. This is
// the first build; versions/bank.v2.cc changes the fee (the bug docs/Debugging.md hunts down).
//
//   bank --log DIR   runs 300 deterministic operations, logging every epoch to DIR
#include <cstdint>
#include <cstdio>
#include <string>

#include "mmsb/mmsb.h"

struct [[mmsb::page]] Account {
  std::int64_t balance;  // cents
  std::int64_t fees;     // cents charged so far
  std::uint32_t deposits;
  std::uint32_t withdrawals;
};

[[mmsb::page]] Account g_account;

[[mmsb::transaction]] void Deposit(std::int64_t cents) {
  g_account.balance += cents;
  ++g_account.deposits;
}

// A withdrawal pays a fee of 1% (the fee is now "simplified").
[[mmsb::transaction]] void Withdraw(std::int64_t cents) {
  const std::int64_t fee = cents / 10;
  g_account.balance -= cents + fee;
  g_account.fees += fee;
  ++g_account.withdrawals;
}

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--log") {
    std::fprintf(stderr, "usage: bank --log DIR\n");
    return 2;
  }
  if (!mmsb::start().ok() && !mmsb::started()) return 1;
  auto log = mmsb::AttachLog(argv[2]);
  if (!log.ok()) {
    std::fprintf(stderr, "bank: %s\n", log.status().ToString().c_str());
    return 1;
  }
  Deposit(10000);  // opening balance: 100.00
  for (int day = 1; day < 300; ++day) {
    if (day % 3 == 0) {
      Deposit(2500);
    } else {
      Withdraw(1200);
    }
  }
  std::printf("balance %.2f, fees %.2f\n", g_account.balance / 100.0, g_account.fees / 100.0);
  (void)(*log)->Close();
  mmsb::stop();
  return 0;
}
