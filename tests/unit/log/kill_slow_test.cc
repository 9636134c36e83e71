// kill -9 soak: many rounds over one log directory (label slow). See kill_workload.h.
#include "kill_workload.h"

namespace mmsb {
namespace {

TEST(KillNineSoak, TwoHundredKillsLoseNothingAcknowledged) {
  testing::TempDir dir;
  testing::KillStats stats;
  testing::RunKillRounds(dir.Sub("run.tlog"), 200, 2, &stats);
  std::printf("kill -9 soak: %d kills, %llu epochs recovered\n", stats.kills,
              static_cast<unsigned long long>(stats.epochs));
}

}  // namespace
}  // namespace mmsb
