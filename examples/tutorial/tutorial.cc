// tutorial: MMSB's runtime in one short program, compiled with the MMSB plugin.
//
// A weather station records temperatures into a [[mmsb::page]] struct. Three more pages are
// derived from it through the dependency graph, so every commit recomputes them in the same
// epoch. The run is logged; the log is then replayed and compared with the live pages bit for
// bit, its events with what a subscriber saw, and two epochs are diffed by field name. A second
// run restores the static pages from the log and carries on.
//
//   tutorial --log DIR            the first run (DIR must not hold a log yet)
//   tutorial --log DIR --resume   the second run: restore from DIR's log and continue it
//
// examples/tutorial/tutorial.sh runs both; ctest runs that script (example_tutorial). Every
// claim the program prints is checked first: a failed check prints "FAILED: ..." and exits 1.
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmsb/mmsb.h"

constexpr int kSlots = 8;

// The raw input: what the station measured.
struct [[mmsb::page]] Readings {
  float celsius[kSlots];
  std::uint32_t count;
};

// Derived from Readings by a function (a user edge).
struct [[mmsb::page]] Report {
  float mean_c;
  float max_c;
  std::uint32_t count;
};

// Derived by copying fields (projection edges): count from Readings, mean_c from Report. It sits
// one level below Report, so it is recomputed after it, in the same commit.
struct [[mmsb::page]] Dashboard {
  std::uint32_t count;
  float mean_c;
};

// Static pages: they live in the plugin's page section and register before main(). Their
// identity is their (mangled) name, so a later run can restore them.
[[mmsb::page]] Readings g_readings;
[[mmsb::page]] Report g_report;
[[mmsb::page]] Dashboard g_dashboard;

// One transaction, one epoch: the commit runs when it returns.
[[mmsb::transaction]] void Record(float celsius) {
  g_readings.celsius[g_readings.count % kSlots] = celsius;
  ++g_readings.count;
}

// Stores the value slot 0 already holds: no byte changes, so the commit has no delta at all.
[[mmsb::transaction]] void Recalibrate() { g_readings.celsius[0] = g_readings.celsius[0]; }

// The report's recompute function: runs inside commit() whenever the readings changed.
mmsb::Status Summarize(std::span<const mmsb::Page* const> parents, mmsb::Page& child) {
  const auto& in = *reinterpret_cast<const Readings*>(parents[0]->data());
  auto& out = *reinterpret_cast<Report*>(child.data());
  const int n = static_cast<int>(std::min<std::uint32_t>(in.count, kSlots));
  float sum = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    sum += in.celsius[i];
    max = i == 0 ? in.celsius[i] : std::max(max, in.celsius[i]);
  }
  out.mean_c = n > 0 ? sum / static_cast<float>(n) : 0.0f;
  out.max_c = max;
  out.count = in.count;
  return mmsb::Status::Ok();
}

namespace {

int g_failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what.c_str());
    ++g_failures;
  }
}

int Fail(const char* what, const mmsb::Status& s) {
  std::printf("FAILED: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

void Step(const char* title) { std::printf("\n== %s\n", title); }

// The graph: report = Summarize(readings); dashboard <- readings.count and report.mean_c;
// backup (a heap page) <- readings, byte for byte.
mmsb::Status BuildGraph(const mmsb::Page& readings, const mmsb::Page& report, const mmsb::Page& dashboard,
                        const mmsb::Page& backup) {
  const mmsb::PageId parents[] = {readings.id()};
  MMSB_RETURN_IF_ERROR(mmsb::AddUserEdges(parents, report.id(), Summarize));
  MMSB_RETURN_IF_ERROR(mmsb::AddProjectionEdge(
      readings.id(), dashboard.id(),
      {offsetof(Readings, count), sizeof(std::uint32_t), offsetof(Dashboard, count)}));
  MMSB_RETURN_IF_ERROR(mmsb::AddProjectionEdge(
      report.id(), dashboard.id(), {offsetof(Report, mean_c), sizeof(float), offsetof(Dashboard, mean_c)}));
  return mmsb::AddPassthroughEdge(readings.id(), backup.id());
}

// Compares every live page with its replayed bytes. Returns the number of pages compared.
int CompareWithReplay(const mmsb::LogState& state, const mmsb::LogSink& log) {
  int compared = 0;
  for (const mmsb::PageInfo& info : mmsb::ListPages()) {
    const mmsb::ReplayedPage* replayed = state.FindPage(log.LogPageId(info.id));
    const mmsb::Page* live = mmsb::FindPage(info.id);
    Check(replayed != nullptr && replayed->bytes.size() == live->size() &&
              std::memcmp(replayed->bytes.data(), live->data(), live->size()) == 0,
          "replayed page " + std::to_string(info.id) + " equals the live page");
    ++compared;
  }
  Check(static_cast<std::size_t>(compared) == state.pages.size(), "the replay has no extra pages");
  return compared;
}

std::string Names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

int FirstRun(const std::string& dir) {
  Step("1. The state. Four pages: three static ones and a heap page from `new`.");
  // Attach the log first, so it records every page from the first commit on.
  auto log = mmsb::AttachLog(dir);
  if (!log.ok()) return Fail("opening the log", log.status());
  auto* backup = new Readings{};  // a heap page: the plugin's operator new puts it in the arena
  mmsb::Page* readings = mmsb::PageOf(&g_readings);
  mmsb::Page* report = mmsb::PageOf(&g_report);
  mmsb::Page* dashboard = mmsb::PageOf(&g_dashboard);
  mmsb::Page* backup_page = mmsb::PageOf(backup);
  if (!readings || !report || !dashboard || !backup_page) {
    std::printf("FAILED: the state is not in MMSB pages: was this compiled with the MMSB plugin?\n");
    return 1;
  }
  for (const mmsb::Page* p : {readings, report, dashboard, backup_page}) {
    std::printf("   page %llu: %-9s %2zu bytes  %s\n", static_cast<unsigned long long>(p->id()),
                p->type()->name.c_str(), p->size(), p->is_static() ? ("static, named " + p->name()).c_str() : "heap");
  }

  Step("2. Propagation: report = Summarize(readings) (user edge); dashboard gets readings.count and\n"
       "   report.mean_c (projection edges); backup mirrors readings (passthrough edge).");
  if (auto s = BuildGraph(*readings, *report, *dashboard, *backup_page); !s.ok()) return Fail("building the graph", s);
  std::printf("   heights: readings %d, report %d, backup %d, dashboard %d\n", mmsb::NodeHeight(readings->id()),
              mmsb::NodeHeight(report->id()), mmsb::NodeHeight(backup_page->id()), mmsb::NodeHeight(dashboard->id()));
  Check(mmsb::NodeHeight(dashboard->id()) == 2, "the dashboard sits below the report");
  Check(mmsb::AddPassthroughEdge(backup_page->id(), readings->id()).code() == mmsb::StatusCode::kGraphCycle,
        "an edge that closes a cycle is refused");

  Step("3. Transactions. Each Record() is one epoch; its commit recomputes the derived pages.");
  // A subscriber sees one batch of typed events per commit.
  std::vector<std::vector<mmsb::Event>> seen;
  std::map<std::string, int> counts;
  auto sub = mmsb::Subscribe([&](std::span<const mmsb::Event> batch) {
    seen.emplace_back(batch.begin(), batch.end());
    int changed = 0;
    std::uint64_t recomputed = 0;
    for (const mmsb::Event& e : batch) {
      ++counts[mmsb::EventTypeName(e.type)];
      if (e.type == mmsb::EventType::kPageChanged) ++changed;
      if (e.type == mmsb::EventType::kPropagationDone) recomputed = e.count;
    }
    std::printf("   epoch %llu: %d page(s) changed, %llu recomputed\n",
                static_cast<unsigned long long>(batch.back().epoch), changed,
                static_cast<unsigned long long>(recomputed));
  });
  if (!sub.ok()) return Fail("subscribing", sub.status());
  for (float c : {20.0f, 22.0f, 24.0f, 21.0f, 23.0f}) Record(c);
  std::printf("   dashboard: %u readings, mean %.2f C (report: max %.2f C); backup holds %u readings\n",
              g_dashboard.count, g_dashboard.mean_c, g_report.max_c, backup->count);
  Check(g_dashboard.count == 5 && g_dashboard.mean_c == 22.0f && g_report.max_c == 24.0f, "the derived pages");
  Check(std::memcmp(backup, &g_readings, sizeof(Readings)) == 0, "the backup mirrors the readings");
  Recalibrate();
  std::printf("   Recalibrate() stored a value slot 0 already held: no delta, nothing recomputed\n");
  Check(seen.back().size() == 1 && seen.back()[0].type == mmsb::EventType::kCommitDone,
        "an epoch without changes has only CommitDone");
  std::printf("   events: PageCreated %d, DeltaApplied %d, PageChanged %d, PropagationDone %d, CommitDone %d\n",
              counts["PageCreated"], counts["DeltaApplied"], counts["PageChanged"], counts["PropagationDone"],
              counts["CommitDone"]);
  if (auto s = mmsb::Unsubscribe(*sub); !s.ok()) return Fail("unsubscribing", s);

  Step("4. The log. Every commit above was appended to it, durably, before Record() returned.");
  const mmsb::Epoch last = (*log)->LogEpoch(mmsb::current_epoch());
  if (auto s = mmsb::RemoveSink(log->get()); !s.ok()) return Fail("detaching the log", s);
  if (auto s = (*log)->Close(); !s.ok()) return Fail("closing the log", s);
  std::printf("   %s: %llu epochs, %llu deltas\n", dir.c_str(), static_cast<unsigned long long>(last),
              static_cast<unsigned long long>(mmsb::GetStats().deltas));

  Step("5. Replay: rebuild the latest epoch from the log alone and compare it with the live pages.");
  mmsb::ReplayOptions options;
  options.collect_events = true;
  mmsb::ReplayReport replay_report;
  auto latest = mmsb::Replay(dir, options, &replay_report);
  if (!latest.ok()) return Fail("replaying", latest.status());
  const int pages = CompareWithReplay(*latest, **log);
  if (g_failures == 0) {
    std::printf("   replay of epoch %llu is bit-identical to the live state (%d pages compared)\n",
                static_cast<unsigned long long>(latest->epoch), pages);
  }
  std::vector<std::vector<mmsb::Event>> replayed;
  for (const mmsb::ReplayedEvent& re : replay_report.events) {
    auto batch = mmsb::DecodeEvents(re.bytes);
    if (!batch.ok()) return Fail("decoding the logged events", batch.status());
    replayed.push_back(*batch);
  }
  Check(replayed == seen, "the logged event batches equal the ones the subscriber saw");
  if (g_failures == 0) {
    std::printf("   the log holds the same %zu event batches the subscriber saw\n", replayed.size());
  }

  Step("6. What changed between epochs 2 and 5, by field (DiffStates on two replayed states).");
  options = {};
  options.epoch = 2;
  auto second = mmsb::Replay(dir, options);
  options.epoch = 5;
  auto fifth = mmsb::Replay(dir, options);
  if (!second.ok() || !fifth.ok()) return Fail("replaying epochs 2 and 5", second.ok() ? fifth.status() : second.status());
  const mmsb::StateDiff diff = mmsb::DiffStates(*second, *fifth);
  int fields = 0;
  for (const mmsb::PageDiff& page : diff.pages) {
    if (page.name.empty()) {
      std::printf("   (the heap page %llu changed like the readings: %zu fields)\n",
                  static_cast<unsigned long long>(page.id), page.fields.size());
      continue;
    }
    for (const mmsb::FieldChange& f : page.fields) {
      std::printf("   %s.%s: %s -> %s\n", page.type_name.c_str(), f.path.c_str(), f.old_value.c_str(),
                  f.new_value.c_str());
      ++fields;
    }
  }
  Check(fields == 9, "9 field changes in the static pages between epochs 2 and 5");
  delete backup;
  return g_failures == 0 ? 0 : 1;
}

int SecondRun(const std::string& dir) {
  Step("7. A new process. Its static pages registered empty; restore them from the log by name.");
  auto log = mmsb::AttachLog(dir);  // continues the log: new epochs and page ids follow the old ones
  if (!log.ok()) return Fail("opening the log", log.status());
  auto restored = mmsb::RestoreStaticPages(dir);
  if (!restored.ok()) return Fail("restoring", restored.status());
  std::printf("   restored %zu static pages from log epoch %llu: %s\n", restored->restored.size(),
              static_cast<unsigned long long>(restored->epoch), Names(restored->restored).c_str());
  Check(restored->restored.size() == 3 && restored->not_in_log.empty() && restored->mismatched.empty(),
        "all three static pages restored");
  std::printf("   restored dashboard: %u readings, mean %.2f C\n", g_dashboard.count, g_dashboard.mean_c);
  Check(g_readings.count == 5 && g_dashboard.count == 5 && g_dashboard.mean_c == 22.0f && g_report.max_c == 24.0f,
        "the restored values are the first run's");

  // Edges and heap pages belong to a run: build them again.
  auto* backup = new Readings{};
  if (auto s = BuildGraph(*mmsb::PageOf(&g_readings), *mmsb::PageOf(&g_report), *mmsb::PageOf(&g_dashboard),
                          *mmsb::PageOf(backup));
      !s.ok()) {
    return Fail("building the graph", s);
  }
  Record(25.0f);
  std::printf("   one more reading: dashboard %u readings, mean %.2f C; backup holds %u readings\n",
              g_dashboard.count, g_dashboard.mean_c, backup->count);
  Check(g_dashboard.count == 6 && g_dashboard.mean_c == 22.5f && backup->count == 6, "the run continues");

  if (auto s = mmsb::RemoveSink(log->get()); !s.ok()) return Fail("detaching the log", s);
  if (auto s = (*log)->Close(); !s.ok()) return Fail("closing the log", s);
  auto latest = mmsb::Replay(dir);
  if (!latest.ok()) return Fail("replaying", latest.status());
  const int pages = CompareWithReplay(*latest, **log);
  if (g_failures == 0) {
    std::printf("   replay of the continued log (epoch %llu) is bit-identical to the live state (%d pages)\n",
                static_cast<unsigned long long>(latest->epoch), pages);
  }
  delete backup;
  return g_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  bool resume = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--log" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--resume") {
      resume = true;
    } else {
      dir.clear();
      break;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: tutorial --log DIR [--resume]\n");
    return 2;
  }
  const int rc = resume ? SecondRun(dir) : FirstRun(dir);
  mmsb::stop();
  return rc;
}
