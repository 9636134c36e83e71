// libFuzzer target: the checkpoint loader on untrusted bytes, alone and as the start of a replay.
#include <cstdint>
#include <cstdlib>

#include "mmsb/checkpoint.h"
#include "mmsb/replay.h"

#include "fault_env.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mmsb::testing::FaultEnv env;
  if (!env.CreateDir("/c").ok() || !env.CreateDir("/c/run.tlog").ok()) std::abort();
  const auto bytes = mmsb::fuzz::BuildFile(data, size, true);
  env.SetContents("/c/x.ckpt", bytes);
  mmsb::CheckpointLoadOptions o;
  o.env = &env;
  o.max_page_bytes = 1 << 20;
  o.max_total_bytes = 8 << 20;
  auto st = mmsb::LoadCheckpoint("/c/x.ckpt", o);
  if (st.ok()) {
    (void)st->Hash();
    // A checkpoint that loads must survive a write/load round trip unchanged.
    mmsb::CheckpointOptions co;
    co.env = &env;
    co.sync = false;
    if (!mmsb::WriteCheckpointFile("/c/y.ckpt", mmsb::ContentsOf(*st, mmsb::fuzz::kLogId), co).ok())
      std::abort();
    auto again = mmsb::LoadCheckpoint("/c/y.ckpt", o);
    if (!again.ok() || again->Hash() != st->Hash()) std::abort();
  }
  // As the newest checkpoint of a log directory whose only segment is empty.
  env.SetContents("/c/run.tlog/ckpt-00000000000000000003.ckpt", bytes);
  mmsb::ReplayOptions ro;
  ro.env = &env;
  ro.max_page_bytes = 1 << 20;
  ro.max_total_bytes = 8 << 20;
  auto r = mmsb::Replay("/c/run.tlog", ro);
  if (r.ok()) (void)r->Hash();
  return 0;
}
