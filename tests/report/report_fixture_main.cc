// mmsb_report_fixture: inputs for the report browser test and `bench/run report`.
//   mmsb_report_fixture log DIR EPOCHS PAGES   the fixture log (fixture_log.h)
//   mmsb_report_fixture ir DB FUNCTIONS        an IR store with generations 1 and 2 of FUNCTIONS
//                                              functions (500 per TU): in 2, every 20th grew by
//                                              3 instructions, every 100th was renamed only,
//                                              one was removed and one added; every 50th writes
//                                              the page type Particles. TU 0 also defines
//                                              mmsb::testing::FixtureStep(), the fixture log's
//                                              transaction, which grew in 2.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "mmsb/ir/record.h"
#include "mmsb/ir/store.h"

#include "fixture_log.h"

namespace {

std::string Body(const std::string& name, int n) {
  std::string t = "define i32 @" + name + "(i32 %0) {\n";
  for (int i = 0; i < n; ++i) {
    t += "  %" + std::to_string(i + 2) + " = add nsw i32 %" + std::to_string(i + 1) + ", " +
         std::to_string(i * 3 + 1) + "\n";
  }
  return t + "  ret i32 %" + std::to_string(n + 1) + "\n}\n";
}

mmsb::ir::FunctionRecord Record(const std::string& name, int n, mmsb::ir::Stage stage,
                                std::uint64_t shash, bool writer) {
  mmsb::ir::FunctionRecord r;
  r.name = name;
  r.stage = stage;
  r.text = Body(name, n);
  r.structural_hash = shash;
  r.instructions = static_cast<std::uint32_t>(n + 1);
  r.blocks = 1;
  r.linkage = "external";
  r.file = "/src/fixture.cc";
  r.line = 1;
  if (writer) r.page_types = {"Particles"};
  return r;
}

int WriteIr(const std::string& db, int functions) {
  auto store = mmsb::ir::Store::Open(db, mmsb::ir::Store::Mode::kReadWrite);
  if (!store.ok()) {
    std::fprintf(stderr, "fixture: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const int per_tu = 500;
  for (int gen = 1; gen <= 2; ++gen) {
    std::map<int, mmsb::ir::TuCapture> tus;
    for (int i = 0; i <= functions; ++i) {
      if (gen == 1 && i == functions) continue;  // added in 2
      if (gen == 2 && i == 1) continue;          // removed in 2
      int n = 4 + i % 37;
      if (gen == 2 && i % 20 == 0) n += 3;
      std::string name = "_Z4workILi" + std::to_string(i) + "EEii";
      if (gen == 2 && i % 100 == 50) name = "_Z7renamedILi" + std::to_string(i) + "EEii";
      const std::uint64_t shash = 0x9E3779B97F4A7C15ull * (i + 1) + (gen == 2 && i % 20 == 0);
      mmsb::ir::TuCapture& tu = tus[i / per_tu];
      if (tu.source.empty()) {
        tu.source = "/src/tu" + std::to_string(i / per_tu) + ".cc";
        tu.output = tu.source + ".o";
        tu.compiler = "clang version 19.1.7";
        tu.flags_hash = "0123456789abcdef";
      }
      const bool writer = i % 50 == 0;
      tu.functions.push_back(Record(name, n, mmsb::ir::Stage::kPre, shash, writer));
      tu.functions.push_back(
          Record(name, n > 1 ? n - 1 : n, mmsb::ir::Stage::kPost, shash, writer));
    }
    const std::string step = "_ZN4mmsb7testing11FixtureStepEv";
    const int step_n = gen == 1 ? 5 : 9;
    tus[0].functions.push_back(Record(step, step_n, mmsb::ir::Stage::kPre, 0xF1 + gen, true));
    tus[0].functions.push_back(Record(step, step_n - 1, mmsb::ir::Stage::kPost, 0xF1 + gen, true));
    for (auto& [k, tu] : tus) {
      auto g = (*store)->AddCapture(tu, {std::to_string(gen)});
      if (!g.ok()) {
        std::fprintf(stderr, "fixture: %s\n", g.status().ToString().c_str());
        return 1;
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "log" && argc == 5) {
    const std::uint64_t epochs = std::strtoull(argv[3], nullptr, 10);
    const int pages = std::atoi(argv[4]);
    if (epochs < 1 || pages < 1) {
      std::fprintf(stderr, "EPOCHS and PAGES must be at least 1\n");
      return 2;
    }
    mmsb::Status s = mmsb::testing::WriteFixtureLog(argv[2], epochs, pages);
    if (!s.ok()) {
      std::fprintf(stderr, "fixture: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  if (mode == "ir" && argc == 4) {
    const int functions = std::atoi(argv[3]);
    if (functions < 2) {
      std::fprintf(stderr, "FUNCTIONS must be at least 2\n");
      return 2;
    }
    return WriteIr(argv[2], functions);
  }
  std::fprintf(stderr, "usage: %s log DIR EPOCHS PAGES | ir DB FUNCTIONS\n", argv[0]);
  return 2;
}
