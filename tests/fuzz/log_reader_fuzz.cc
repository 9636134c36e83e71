// libFuzzer target: the log reader, replay, state diff and the writer's recovery on untrusted
// segment bytes. Nothing may crash, read out of bounds, or allocate beyond the replay's limits.
#include <xxhash.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "delta/delta_view.h"
#include "fault_env.h"
#include "fuzz_input.h"

namespace {

constexpr const char* kDir = "/f/run.tlog";
constexpr const char* kSeg = "/f/run.tlog/00000001.seg";

void ReadAll(mmsb::Env* env, mmsb::RecoveryMode mode) {
  mmsb::LogReaderOptions o;
  o.env = env;
  o.mode = mode;
  o.max_page_bytes = 1 << 20;
  auto r = mmsb::LogReader::Open(kDir, o);
  if (!r.ok()) return;
  mmsb::LogEntry e;
  for (int i = 0; i < 100000; ++i) {
    auto more = (*r)->Next(&e);
    if (!more.ok() || !*more) break;
  }
}

// Replay applies deltas with its own in-place parser; it must accept exactly what DecodeDelta
// accepts and apply the same bytes. The input, with its envelope checksum fixed up so the
// structural checks are reached, is tried as one encoded delta.
void CheckDeltaViewAgainstDecodeDelta(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> enc(data, data + size);
  if (enc.size() >= 20) {
    std::uint64_t len = 0;
    std::memcpy(&len, enc.data() + 4, 8);
    if (len >= 20 && len <= enc.size()) {
      const std::uint64_t h = XXH3_64bits(enc.data(), len - 8);
      std::memcpy(enc.data() + len - 8, &h, 8);
    }
  }
  mmsb::delta_internal::DeltaView v;
  const bool view_ok = mmsb::delta_internal::ParseDeltaView(enc, 1 << 16, true, &v).ok();
  std::size_t consumed = 0;
  auto d = mmsb::DecodeDelta(enc, &consumed, 1 << 16);
  const bool decode_ok = d.ok() && consumed == enc.size();
  if (view_ok != decode_ok) std::abort();
  if (!view_ok) return;
  std::vector<std::uint8_t> a(v.page_size, 0), b(v.page_size, 0);
  mmsb::delta_internal::ApplyDeltaView(v, a.data());
  if (!d->ApplyTo(b).ok() || a != b) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  CheckDeltaViewAgainstDecodeDelta(data, size);
  mmsb::testing::FaultEnv env;
  if (!env.CreateDir("/f").ok() || !env.CreateDir(kDir).ok()) std::abort();
  env.SetContents(kSeg, mmsb::fuzz::BuildFile(data, size, false));

  ReadAll(&env, mmsb::RecoveryMode::kStrict);
  ReadAll(&env, mmsb::RecoveryMode::kSalvage);

  for (mmsb::RecoveryMode mode : {mmsb::RecoveryMode::kStrict, mmsb::RecoveryMode::kSalvage}) {
    mmsb::ReplayOptions o;
    o.env = &env;
    o.mode = mode;
    o.max_page_bytes = 1 << 20;
    o.max_total_bytes = 8 << 20;
    o.collect_events = true;
    auto r = mmsb::Replayer::Open(kDir, o);
    if (!r.ok()) continue;
    auto first = (*r)->AdvanceTo(1);
    if (!first.ok()) continue;
    const mmsb::LogState at_first = (*r)->state();
    auto last = (*r)->AdvanceTo(mmsb::kLatestEpoch);
    if (!last.ok()) continue;
    (void)(*r)->state().Hash();
    mmsb::DiffOptions d;
    d.max_fields = 64;
    (void)mmsb::DiffStates(at_first, (*r)->state(), d);
    (void)mmsb::LogStateToJson((*r)->state(), &(*r)->report(), false);
  }

  // The writer's recovery on the same bytes (salvage, so it opens whenever it can), then a commit.
  mmsb::LogOptions lo;
  lo.env = &env;
  lo.recovery = mmsb::RecoveryMode::kSalvage;
  auto w = mmsb::LogWriter::Open(kDir, lo);
  if (w.ok()) {
    mmsb::LogBatch b = (*w)->NewBatch();
    (void)(*w)->Commit(b);
  }
  return 0;
}
