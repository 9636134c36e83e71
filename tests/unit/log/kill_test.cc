// kill -9 of a child mid-workload (a few rounds; kill_slow_test.cc runs many). See kill_workload.h.
#include "kill_workload.h"

namespace mmsb {
namespace {

TEST(KillNine, EveryAcknowledgedCommitSurvivesAndRestoreCarriesStaticPages) {
  testing::TempDir dir;
  testing::KillStats stats;
  testing::RunKillRounds(dir.Sub("run.tlog"), 12, 1, &stats);
  std::printf("kill -9: %d kills, %llu epochs recovered\n", stats.kills,
              static_cast<unsigned long long>(stats.epochs));
}

}  // namespace
}  // namespace mmsb
