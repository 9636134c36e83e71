// Writes seed inputs for the fuzzers: a real log segment and checkpoint (raw mode, first byte 0),
// so the fuzzer starts from valid files and mutates inward.
//   make_seeds <log corpus dir> <checkpoint corpus dir>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mmsb/checkpoint.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

#include "fault_env.h"
#include "fuzz_input.h"

namespace {

bool Write(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const std::uint8_t raw = 0;
  const bool ok = std::fwrite(&raw, 1, 1, f) == 1 &&
                  std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_seeds <log corpus dir> <checkpoint corpus dir>\n");
    return 2;
  }
  mmsb::testing::FaultEnv env;
  if (!env.CreateDir("/s").ok()) return 1;
  mmsb::LogOptions o;
  o.env = &env;
  auto w = mmsb::LogWriter::Open("/s/run.tlog", o);
  if (!w.ok()) return 1;
  mmsb::LogBatch b = (*w)->NewBatch();
  mmsb::TypeDescriptor t;
  t.name = "Pair";
  t.size = 8;
  t.align = 4;
  t.fields = {{"a", 0, 4, mmsb::ScalarKind::kU32, 4, {}, ""},
              {"b", 4, 4, mmsb::ScalarKind::kF32, 4, {}, ""}};
  b.AddTypeDescriptor(t);
  b.AddPageCreate({1, 8, mmsb::Location::kCpu, true, "g_pair", "Pair"});
  b.AddPageCreate({2, 64, mmsb::Location::kCpu, false, "", ""});
  b.AddEdgeChange({mmsb::EdgeOp::kAdd,
                   {1, 2, mmsb::EdgeKind::kProjection, {0, 8, 8}, mmsb::DerivedPolicy::kLog}});
  std::vector<std::uint8_t> zero(64, 0), now(64, 0);
  now[3] = 7;
  now[40] = 9;
  if (!b.AddDelta(mmsb::Diff(2, 0, zero, now)).ok()) return 1;
  const std::uint8_t ev[] = {1, 2, 3};
  b.AddEvent(1, ev);
  if (!(*w)->Commit(b).ok()) return 1;
  b.Clear();
  std::vector<std::uint8_t> next = now;
  next[5] = 1;
  if (!b.AddDelta(mmsb::Diff(2, 1, now, next)).ok()) return 1;
  b.AddPageFree(1);
  if (!(*w)->Commit(b).ok()) return 1;
  if (!(*w)->Close().ok()) return 1;
  auto st = mmsb::Replay("/s/run.tlog", [&] {
    mmsb::ReplayOptions r;
    r.env = &env;
    return r;
  }());
  if (!st.ok()) return 1;
  mmsb::CheckpointOptions co;
  co.env = &env;
  if (!mmsb::WriteCheckpointFile("/s/x.ckpt", mmsb::ContentsOf(*st, mmsb::fuzz::kLogId), co).ok())
    return 1;
  const std::string log_dir = argv[1], ckpt_dir = argv[2];
  if (!Write(log_dir + "/seed-segment", env.Contents("/s/run.tlog/00000001.seg"))) return 1;
  if (!Write(ckpt_dir + "/seed-checkpoint", env.Contents("/s/x.ckpt"))) return 1;
  return 0;
}
