// Writes the valid inputs that the CLI campaign (cli_campaign.py) damages and asks wrong
// questions of: a log with a typed page, a raw page, five epochs and a checkpoint of epoch 3, and
// an IR store with two generations of one TU.
//   robust_fixtures <dir>      creates <dir>/good.tlog/ and <dir>/ir.db
#include <cstdio>
#include <string>
#include <vector>

#include "mmsb/checkpoint.h"
#include "mmsb/ir/record.h"
#include "mmsb/ir/store.h"
#include "mmsb/log.h"
#include "mmsb/replay.h"

namespace {

int Die(const mmsb::Status& s, const char* what) {
  std::fprintf(stderr, "robust_fixtures: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

mmsb::ir::FunctionRecord Fn(const std::string& name, mmsb::ir::Stage stage,
                            const std::string& body) {
  mmsb::ir::FunctionRecord f;
  f.name = name;
  f.stage = stage;
  f.text = "define void @" + name + "() {\n" + body + "  ret void\n}\n";
  f.structural_hash = std::hash<std::string>{}(f.text);
  f.instructions = 1 + static_cast<std::uint32_t>(body.size() / 16);
  f.blocks = 1;
  f.linkage = "external";
  f.file = "/src/a.cc";
  f.line = 3;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: robust_fixtures <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::string log = dir + "/good.tlog";
  mmsb::LogOptions o;
  o.retire_segments = false;
  auto w = mmsb::LogWriter::Open(log, o);
  if (!w.ok()) return Die(w.status(), "opening the log");
  mmsb::TypeDescriptor t;
  t.name = "Pair";
  t.size = 8;
  t.align = 4;
  t.fields = {{"a", 0, 4, mmsb::ScalarKind::kU32, 4, {}, ""},
              {"b", 4, 4, mmsb::ScalarKind::kF32, 4, {}, ""}};
  std::vector<std::uint8_t> pair(8, 0), raw(64, 0);
  for (mmsb::Epoch e = 1; e <= 5; ++e) {
    mmsb::LogBatch b = (*w)->NewBatch();
    if (e == 1) {
      b.AddTypeDescriptor(t);
      b.AddPageCreate({1, 8, mmsb::Location::kCpu, true, "g_pair", "Pair"});
      b.AddPageCreate({2, 64, mmsb::Location::kCpu, false, "", ""});
    }
    std::vector<std::uint8_t> next = pair, next_raw = raw;
    next[0] = static_cast<std::uint8_t>(e);
    next_raw[e * 7] = static_cast<std::uint8_t>(e + 1);
    if (auto s = b.AddDelta(mmsb::Diff(1, e - 1, pair, next)); !s.ok()) return Die(s, "delta");
    if (auto s = b.AddDelta(mmsb::Diff(2, e - 1, raw, next_raw)); !s.ok()) return Die(s, "delta");
    pair = next;
    raw = next_raw;
    if (auto c = (*w)->Commit(b); !c.ok()) return Die(c.status(), "commit");
    if (e == 3) {
      mmsb::ReplayOptions ro;
      ro.epoch = 3;
      auto st = mmsb::Replay(log, ro);
      if (!st.ok()) return Die(st.status(), "replay to epoch 3");
      auto ck = mmsb::WriteLogCheckpoint(**w, mmsb::ContentsOf(*st, (*w)->log_id()));
      if (!ck.ok()) return Die(ck.status(), "checkpoint");
    }
  }
  if (auto s = (*w)->Close(); !s.ok()) return Die(s, "closing the log");

  auto store = mmsb::ir::Store::Open(dir + "/ir.db", mmsb::ir::Store::Mode::kReadWrite);
  if (!store.ok()) return Die(store.status(), "opening the IR store");
  for (int gen = 1; gen <= 2; ++gen) {
    mmsb::ir::TuCapture c;
    c.source = "/src/a.cc";
    c.output = "/build/a.o";
    c.compiler = "clang version 19 (fixture)";
    c.flags_hash = "0123";
    const std::string body = gen == 1 ? "" : "  call void @_Z3barv()\n";
    c.functions = {Fn("_Z3foov", mmsb::ir::Stage::kPre, body),
                   Fn("_Z3foov", mmsb::ir::Stage::kPost, body),
                   Fn("_Z3barv", mmsb::ir::Stage::kPre, "")};
    auto g = (*store)->AddCapture(c, {});
    if (!g.ok()) return Die(g.status(), "capture");
  }
  return 0;
}
