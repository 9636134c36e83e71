// build_units.sh's second translation unit: main, with a page of its own.
//   app --log DIR   runs 20 transactions, logging every epoch to DIR
#include <cstdint>
#include <cstdio>
#include <string>

#include "mmsb/mmsb.h"

void Bump(std::int64_t by);
std::int64_t Total();

struct [[mmsb::page]] Runs {
  std::int64_t count;
};

[[mmsb::page]] Runs g_runs;

[[mmsb::transaction]] void Count() { ++g_runs.count; }

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--log") {
    std::fprintf(stderr, "usage: app --log DIR\n");
    return 2;
  }
  if (!mmsb::start().ok() && !mmsb::started()) return 1;
  auto log = mmsb::AttachLog(argv[2]);
  if (!log.ok()) {
    std::fprintf(stderr, "app: %s\n", log.status().ToString().c_str());
    return 1;
  }
  for (int i = 1; i <= 10; ++i) {
    Bump(i);
    Count();
  }
  std::printf("total %lld\n", static_cast<long long>(Total()));
  (void)(*log)->Close();
  mmsb::stop();
  return 0;
}
