// The examples of docs/API.md on env.h, log.h, replay.h and checkpoint.h, compiled and run.
// See docs_api_test.h for how docs/API.md is checked against these files.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/held_marks.h"
#include "mmsb/kernels.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "docs_api_test.h"
#include "temp_dir.h"

namespace {

// ---- mmsb/env.h
// ----------------------------------------------------------------------------------

std::span<const std::uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Replaces `dir`/notes atomically and durably, then reads it back.
mmsb::Expected<std::string> ReplaceNotes(mmsb::Env* env, const std::string& dir,
                                         std::string_view text) {
  MMSB_RETURN_IF_ERROR(env->CreateDir(dir));
  const std::string tmp = mmsb::JoinPath(dir, "notes.tmp");
  const std::string path = mmsb::JoinPath(dir, "notes");
  {
    mmsb::Expected<std::unique_ptr<mmsb::WritableFile>> out = env->NewWritableFile(tmp);
    if (!out.ok()) return out.status();
    MMSB_RETURN_IF_ERROR((*out)->Append(Bytes(text)));
    MMSB_RETURN_IF_ERROR((*out)->Sync());  // the bytes and the size are durable
    MMSB_RETURN_IF_ERROR((*out)->Close());
  }
  MMSB_RETURN_IF_ERROR(env->RenameFile(tmp, path));
  MMSB_RETURN_IF_ERROR(env->SyncDir(dir));  // the rename is durable
  mmsb::Expected<std::unique_ptr<mmsb::RandomAccessFile>> in = env->NewRandomAccessFile(path);
  if (!in.ok()) return in.status();
  std::string back((*in)->Size(), '\0');
  std::size_t got = 0;
  MMSB_RETURN_IF_ERROR(
      (*in)->Read(0, back.size(), reinterpret_cast<std::uint8_t*>(back.data()), &got));
  back.resize(got);
  return back;
}

// One writer per directory, across processes.
mmsb::Status WithDirectoryLock(mmsb::Env* env, const std::string& dir) {
  mmsb::Expected<std::unique_ptr<mmsb::FileLock>> lock = env->LockFile(mmsb::JoinPath(dir, "LOCK"));
  if (!lock.ok()) return lock.status();  // FailedPrecondition naming the holder
  // ... the directory is ours until `lock` is destroyed ...
  return mmsb::Status::Ok();
}

TEST(DocsApiEnv, PosixEnvWritesRenamesReadsAndLocks) {
  TempDir tmp;
  mmsb::Env* env = mmsb::Env::Default();
  const std::string dir = tmp.Sub("state");
  mmsb::Expected<std::string> back = ReplaceNotes(env, dir, "epoch 42 was fine\n");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, "epoch 42 was fine\n");
  EXPECT_TRUE(env->FileExists(mmsb::JoinPath(dir, "notes")));
  EXPECT_FALSE(env->FileExists(mmsb::JoinPath(dir, "notes.tmp")));
  EXPECT_TRUE(env->IsDirectory(dir));
  EXPECT_EQ(*env->GetFileSize(mmsb::JoinPath(dir, "notes")), 18u);
  EXPECT_EQ(*env->GetChildren(dir), std::vector<std::string>{"notes"});
  ASSERT_OK(env->TruncateFile(mmsb::JoinPath(dir, "notes"), 5));
  EXPECT_EQ(*env->GetFileSize(mmsb::JoinPath(dir, "notes")), 5u);
  auto mapped = env->NewMappedFile(mmsb::JoinPath(dir, "notes"));
  ASSERT_TRUE(mapped.ok());
  EXPECT_EQ((*mapped)->Size(), 5u);
  ASSERT_OK(WithDirectoryLock(env, dir));
  {
    auto held = env->LockFile(mmsb::JoinPath(dir, "LOCK"));
    ASSERT_TRUE(held.ok());
    EXPECT_EQ(WithDirectoryLock(env, dir).code(), mmsb::StatusCode::kFailedPrecondition);
  }
  ASSERT_OK(WithDirectoryLock(env, dir));
  ASSERT_OK(env->RemoveFile(mmsb::JoinPath(dir, "notes")));
  EXPECT_EQ(env->NewRandomAccessFile(mmsb::JoinPath(dir, "notes")).status().code(),
            mmsb::StatusCode::kNotFound);
  EXPECT_GT(env->NowUnixNanos(), 0u);
  EXPECT_EQ(mmsb::JoinPath("a/", "b"), "a/b");
}

// ---- mmsb/log.h
// ----------------------------------------------------------------------------------

// A log written without the bus: page 1 is created in epoch 1 and changed in epoch 2.
mmsb::Status WriteTwoEpochs(const std::string& dir) {
  mmsb::LogOptions options;
  options.durability = mmsb::Durability::kSync;  // an fsync per commit
  mmsb::Expected<std::unique_ptr<mmsb::LogWriter>> writer = mmsb::LogWriter::Open(dir, options);
  if (!writer.ok()) return writer.status();
  mmsb::LogBatch batch = (*writer)->NewBatch();
  batch.AddPageCreate(
      {/*id=*/1, /*size=*/64, mmsb::Location::kCpu, /*is_static=*/false, "counters", ""});
  if (auto e = (*writer)->Commit(batch); !e.ok()) return e.status();  // epoch 1
  batch.Clear();
  std::vector<std::uint8_t> before(64, 0), after(64, 0);
  after[3] = 1;
  // A page created in epoch 1 starts at epoch 0: its first delta's base epoch.
  MMSB_RETURN_IF_ERROR(batch.AddDelta(mmsb::Diff(/*page=*/1, /*base_epoch=*/0, before, after)));
  // Commit's two halves: order the group now, wait for the disk later (outside your own locks).
  mmsb::Expected<mmsb::CommitTicket> ticket = (*writer)->Append(batch);  // epoch 2
  if (!ticket.ok()) return ticket.status();
  MMSB_RETURN_IF_ERROR((*writer)->WaitDurable(*ticket));
  return (*writer)->Close();
}

// Lists a log's records; damage is reported and skipped.
mmsb::Status ListRecords(const std::string& path) {
  mmsb::LogReaderOptions options;
  options.mode = mmsb::RecoveryMode::kSalvage;
  mmsb::Expected<std::unique_ptr<mmsb::LogReader>> reader = mmsb::LogReader::Open(path, options);
  if (!reader.ok()) return reader.status();
  mmsb::LogEntry entry;
  for (;;) {
    mmsb::Expected<bool> more = (*reader)->Next(&entry);
    if (!more.ok()) return more.status();
    if (!*more) break;
    const std::string file = std::filesystem::path((*reader)->files()[entry.file_index]).filename();
    std::printf("%s:%llu epoch %llu %s", file.c_str(),
                static_cast<unsigned long long>(entry.offset),
                static_cast<unsigned long long>(entry.epoch), mmsb::LogRecordTypeName(entry.type));
    if (entry.type == mmsb::LogRecordType::kDelta)
      std::printf(" page %llu, %u byte(s)", static_cast<unsigned long long>(entry.delta.page()),
                  entry.delta.changed_bytes());
    std::printf("\n");
  }
  for (const mmsb::LogProblem& p : (*reader)->problems()) {
    std::printf("%s: %s\n", p.is_error() ? "error" : "note", mmsb::LogProblemKindName(p.kind));
  }
  return mmsb::Status::Ok();
}

TEST(DocsApiLog, WriterAndReaderWithoutTheBus) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  ASSERT_OK(WriteTwoEpochs(dir));
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ListRecords(dir));
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("epoch 1 page-create\n"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 2 delta page 1, 1 byte(s)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("epoch 2 commit\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(dir);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->epoch, 2u);
  EXPECT_EQ(state->FindPageByName("counters")->bytes[3], 1);

  // A crash in the middle of a write leaves a torn tail: readers cut it, the next writer too.
  const std::string segment = dir + "/00000001.seg";
  {
    std::ofstream(segment, std::ios::app | std::ios::binary) << "\x20\x00\x00";
  }
  ::testing::internal::CaptureStdout();
  ASSERT_OK(ListRecords(dir));
  out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("note: torn tail"), std::string::npos) << out;
  auto writer = mmsb::LogWriter::Open(dir);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  ASSERT_EQ((*writer)->recovery_problems().size(), 1u);
  EXPECT_EQ((*writer)->recovery_problems()[0].kind, mmsb::LogProblem::Kind::kTornTail);
  EXPECT_EQ((*writer)->last_epoch(), 2u);
  EXPECT_EQ((*writer)->page_id_high(), 1u);
  EXPECT_EQ(mmsb::LogWriter::Open(dir).status().code(), mmsb::StatusCode::kFailedPrecondition)
      << "one writer at a time";
  // Other record kinds, in one epoch, and an event outside any batch.
  mmsb::LogBatch batch = (*writer)->NewBatch();
  batch.AddTypeDescriptor({"Pair",
                           8,
                           4,
                           {{"a", 0, 4, mmsb::ScalarKind::kU32, 4, {}, ""},
                            {"b", 4, 4, mmsb::ScalarKind::kU32, 4, {}, ""}}});
  batch.AddPageCreate({2, 8, mmsb::Location::kCpu, false, "pair", "Pair"});
  batch.AddEdgeChange({mmsb::EdgeOp::kAdd,
                       {1, 2, mmsb::EdgeKind::kProjection, {0, 8, 0}, mmsb::DerivedPolicy::kLog}});
  batch.AddPageFree(2);
  batch.AddEvent(3, Bytes("app event"));
  EXPECT_EQ(batch.record_count(), 4u) << "events are not counted";
  EXPECT_EQ(batch.page_id_high(), 2u);
  auto e3 = (*writer)->Commit(batch);
  ASSERT_TRUE(e3.ok()) << e3.status().ToString();
  EXPECT_EQ(*e3, 3u);
  ASSERT_OK((*writer)->AppendEvent(3, Bytes("late event")));
  ASSERT_OK((*writer)->Flush());
  ASSERT_OK((*writer)->Sync());
  EXPECT_EQ((*writer)->counters().commits, 1u);
  EXPECT_EQ(std::string(mmsb::DurabilityName((*writer)->options().durability)), "group");
  ASSERT_OK((*writer)->Close());
  mmsb::ReplayOptions ro;
  ro.collect_events = true;
  mmsb::ReplayReport report;
  ASSERT_TRUE(mmsb::Replay(dir, ro, &report).ok());
  EXPECT_EQ(report.events.size(), 2u);
  EXPECT_EQ(report.epoch, 3u);
}

// The bus's log: every commit from here on is durable when commit() returns.
mmsb::Status LogARun(const std::string& dir) {
  mmsb::LogOptions options;
  options.durability = mmsb::Durability::kGroup;  // concurrent commits share one fsync
  mmsb::Expected<std::shared_ptr<mmsb::LogSink>> log = mmsb::AttachLog(dir, options);
  if (!log.ok()) return log.status();
  mmsb::Expected<mmsb::Page*> page = mmsb::CreatePage(64);
  if (!page.ok()) return page.status();
  for (std::uint8_t i = 1; i <= 3; ++i) {
    *mmsb::rt::w(&(*page)->data()[0]) = i;
    if (auto e = mmsb::commit(); !e.ok()) return e.status();
  }
  mmsb::Expected<mmsb::Epoch> checkpoint = (*log)->Checkpoint();  // commits, then snapshots
  if (!checkpoint.ok()) return checkpoint.status();
  std::printf(
      "bus epoch %llu = log epoch %llu, bus page %llu = log page %llu, checkpoint at %llu\n",
      static_cast<unsigned long long>(mmsb::current_epoch()),
      static_cast<unsigned long long>((*log)->LogEpoch(mmsb::current_epoch())),
      static_cast<unsigned long long>((*page)->id()),
      static_cast<unsigned long long>((*log)->LogPageId((*page)->id())),
      static_cast<unsigned long long>(*checkpoint));
  MMSB_RETURN_IF_ERROR(mmsb::RemoveSink(log->get()));  // stop logging, then close
  return (*log)->Close();
}

TEST_F(DocsApi, TheBusLogsEveryCommit) {
  const std::string dir = tmp_.Sub("run.tlog");
  ::testing::internal::CaptureStdout();
  ASSERT_OK(LogARun(dir));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "bus epoch 4 = log epoch 4, bus page 1 = log page 1, checkpoint at 4\n");
  EXPECT_TRUE(std::filesystem::exists(dir + "/ckpt-00000000000000000004.ckpt"));
  // A second run continues the log: its epochs and page ids follow the first run's.
  mmsb::stop();
  ASSERT_OK(mmsb::start());
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_TRUE((*log)->wants_events()) << "LogOptions::log_events is on by default";
  mmsb::Page* p = *mmsb::CreatePage(64);
  EXPECT_EQ((*log)->LogPageId(p->id()), 2u);
  ASSERT_OK((*log)->AppendEvent(1, Bytes("marker")));
  (*log)->RequestCheckpoint();  // the next commit writes one
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ((*log)->LogEpoch(1), 5u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/ckpt-00000000000000000005.ckpt"));
  EXPECT_EQ((*log)->writer().last_epoch(), 5u);
  ASSERT_OK((*log)->Close());
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(dir);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->epoch, 5u);
  ASSERT_EQ(state->pages.size(), 1u) << "the first run's page is gone at the second run's start";
  EXPECT_EQ(state->pages.begin()->first, 2u);
}

// ---- mmsb/replay.h
// -------------------------------------------------------------------------------

// The state of one epoch, rebuilt from the newest checkpoint at or before it plus the log.
mmsb::Status PrintEpoch(const std::string& log, mmsb::Epoch epoch) {
  mmsb::ReplayOptions options;
  options.epoch = epoch;  // default: mmsb::kLatestEpoch
  mmsb::ReplayReport report;
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log, options, &report);
  if (!state.ok()) return state.status();  // NotFound when the log ends before `epoch`
  std::printf(
      "epoch %llu: %zu page(s), %llu byte(s), %llu epoch(s) applied after checkpoint %llu\n",
      static_cast<unsigned long long>(state->epoch), state->pages.size(),
      static_cast<unsigned long long>(state->PageBytes()),
      static_cast<unsigned long long>(report.epochs_applied),
      static_cast<unsigned long long>(report.checkpoint_epoch));
  for (const auto& [id, page] : state->pages) {
    std::printf("  page %llu '%s' %s, last changed in epoch %llu\n",
                static_cast<unsigned long long>(id), page.name.c_str(), page.type_name.c_str(),
                static_cast<unsigned long long>(page.epoch));
  }
  return report.has_errors() ? mmsb::Corruption(report.problems[0].ToString()) : mmsb::Status::Ok();
}

// Steps through every epoch from the first, as a debugger would.
mmsb::Expected<std::vector<std::uint64_t>> HashEveryEpoch(const std::string& log) {
  mmsb::ReplayOptions options;
  options.use_checkpoints = false;  // start at the beginning
  mmsb::Expected<std::unique_ptr<mmsb::Replayer>> replayer = mmsb::Replayer::Open(log, options);
  if (!replayer.ok()) return replayer.status();
  std::vector<std::uint64_t> hashes;
  for (;;) {
    mmsb::Expected<bool> stepped = (*replayer)->Step();
    if (!stepped.ok()) return stepped.status();
    if (!*stepped) break;
    hashes.push_back((*replayer)->state().Hash());
  }
  return hashes;
}

// What changed between two epochs, by field name where the log has the type.
mmsb::Status PrintFieldChanges(const std::string& log, mmsb::Epoch from, mmsb::Epoch to) {
  mmsb::DiffOptions options;
  options.type_name = "Body";  // only pages of this type
  mmsb::Expected<mmsb::StateDiff> diff = mmsb::DiffEpochs(log, from, to, options);
  if (!diff.ok()) return diff.status();
  for (const mmsb::PageDiff& page : diff->pages) {
    std::printf("%s page %llu (%llu byte(s))\n", mmsb::PageDiffKindName(page.kind),
                static_cast<unsigned long long>(page.id),
                static_cast<unsigned long long>(page.changed_bytes));
    for (const mmsb::FieldChange& f : page.fields) {
      std::printf("  %s.%s: %s -> %s\n", page.type_name.c_str(), f.path.c_str(),
                  f.old_value.c_str(), f.new_value.c_str());
    }
  }
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, ReplayStepAndDiffALoggedRun) {
  ASSERT_TRUE(RegisterBodyType().ok());
  const std::string dir = tmp_.Sub("run.tlog");
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok());
  mmsb::PageOptions po;
  po.type = mmsb::FindType("Body");
  po.name = "ball";
  mmsb::Page* page = *mmsb::CreatePage(sizeof(Body), po);
  auto* ball = reinterpret_cast<Body*>(page->data());
  *mmsb::rt::w(&ball->mass) = 1.5;
  ASSERT_TRUE(mmsb::commit().ok());  // 1
  *mmsb::rt::w(&ball->hits[3]) = 4;
  *mmsb::rt::w(&ball->pos.z) = -1.0f;
  ASSERT_TRUE(mmsb::commit().ok());        // 2
  ASSERT_TRUE((*log)->Checkpoint().ok());  // 3
  *mmsb::rt::w(&ball->mass) = 2.0;
  ASSERT_TRUE(mmsb::commit().ok());  // 4

  ::testing::internal::CaptureStdout();
  ASSERT_OK(PrintEpoch(dir, 4));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "epoch 4: 1 page(s), 40 byte(s), 1 epoch(s) applied after checkpoint 3\n"
            "  page 1 'ball' Body, last changed in epoch 4\n");
  EXPECT_EQ(PrintEpoch(dir, 9).code(), mmsb::StatusCode::kNotFound);

  auto hashes = HashEveryEpoch(dir);
  ASSERT_TRUE(hashes.ok()) << hashes.status().ToString();
  ASSERT_EQ(hashes->size(), 4u);
  EXPECT_EQ(hashes->back(), mmsb::Replay(dir)->Hash()) << "stepping and replaying agree";
  EXPECT_NE((*hashes)[1], (*hashes)[2]) << "the hash covers the epoch number too";

  ::testing::internal::CaptureStdout();
  ASSERT_OK(PrintFieldChanges(dir, 1, 4));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "changed page 1 (5 byte(s))\n  Body.pos.z: 0 -> -1\n  Body.hits[3]: 0 -> 4\n  "
            "Body.mass: 1.5 -> 2\n");

  // The same through the lower-level pieces, and as JSON.
  mmsb::ReplayOptions at;
  at.epoch = 1;
  const mmsb::LogState one = *mmsb::Replay(dir, at);
  const mmsb::LogState latest = *mmsb::Replay(dir);
  const mmsb::StateDiff diff = mmsb::DiffStates(one, latest);
  ASSERT_EQ(diff.pages.size(), 1u);
  EXPECT_EQ(diff.pages[0].fields.size(), 3u);
  EXPECT_NE(mmsb::StateDiffToJson(diff).find("\"mmsb.diff/1\""), std::string::npos);
  EXPECT_NE(mmsb::LogStateToJson(latest, nullptr, false).find("\"mmsb.state/1\""),
            std::string::npos);
  EXPECT_EQ(latest.FindType("Body")->size, sizeof(Body));
  EXPECT_EQ(latest.FindPage(1)->name, "ball");
  EXPECT_EQ(std::memcmp(latest.FindPage(1)->bytes.data(), page->data(), sizeof(Body)), 0)
      << "bit-identical to the live page";
}

// At start-up, after the static pages registered: bring them back from the last run's log.
mmsb::Status RestoreFrom(const std::string& log) {
  mmsb::Expected<mmsb::RestoreReport> report = mmsb::RestoreStaticPages(log);
  if (!report.ok()) return report.status();
  for (const std::string& name : report->restored) std::printf("restored %s\n", name.c_str());
  for (const std::string& name : report->not_in_log) std::printf("new: %s\n", name.c_str());
  for (const std::string& name : report->mismatched)
    std::printf("layout changed, kept: %s\n", name.c_str());
  return mmsb::Status::Ok();
}

// The static page of the mmsb/page.h chapter (api_basics_test.cc), which a second run restores.
alignas(64) Body g_body;

TEST_F(DocsApi, StaticPagesComeBackByName) {
  ASSERT_TRUE(RegisterBodyType().ok());
  const std::string dir = tmp_.Sub("run.tlog");
  std::memset(&g_body, 0, sizeof g_body);
  mmsb::PageOptions po;
  po.type = mmsb::FindType("Body");
  po.name = "g_body";
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_body, sizeof g_body, po).ok());
  auto log = mmsb::AttachLog(dir);
  ASSERT_TRUE(log.ok());
  *mmsb::rt::w(&g_body.hits[0]) = 11;
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_OK((*log)->Close());
  log->reset();
  mmsb::stop();

  // The next run. (Descriptors from the previous bus died with it: register them again.)
  ASSERT_OK(mmsb::start());
  std::memset(&g_body, 0, sizeof g_body);
  ASSERT_TRUE(RegisterBodyType().ok());
  po.type = mmsb::FindType("Body");
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_body, sizeof g_body, po).ok());
  alignas(64) static std::uint64_t fresh[8];
  mmsb::PageOptions fo;
  fo.name = "fresh";
  ASSERT_TRUE(mmsb::RegisterStaticPage(fresh, sizeof fresh, fo).ok());
  ::testing::internal::CaptureStdout();
  ASSERT_OK(RestoreFrom(dir));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "restored g_body\nnew: fresh\n");
  EXPECT_EQ(g_body.hits[0], 11u);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::PageOf(&g_body)->epoch(), 1u) << "the restored bytes are committed like a write";
  mmsb::RestoreOptions ro;
  ro.epoch = 7;
  EXPECT_EQ(mmsb::RestoreStaticPages(dir, ro).status().code(), mmsb::StatusCode::kNotFound);
}

// ---- mmsb/checkpoint.h
// ---------------------------------------------------------------------------

// Compacts a log into one self-contained checkpoint file, checked by reading it back.
mmsb::Status CompactTo(const std::string& log, const std::string& file) {
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log);
  if (!state.ok()) return state.status();
  mmsb::Expected<std::uint64_t> size =
      mmsb::WriteCheckpointFile(file, mmsb::ContentsOf(*state, /*log_id=*/0));
  if (!size.ok()) return size.status();
  mmsb::Expected<mmsb::LogState> back = mmsb::LoadCheckpoint(file);  // all or nothing
  if (!back.ok()) return back.status();
  std::printf("%llu bytes, epoch %llu\n", static_cast<unsigned long long>(*size),
              static_cast<unsigned long long>(back->epoch));
  return back->Hash() == state->Hash() ? mmsb::Status::Ok() : mmsb::Internal("checkpoint differs");
}

// A checkpoint inside a log written with LogWriter: later replays start from it, and the
// segments it covers are retired.
mmsb::Expected<std::string> CheckpointLog(const std::string& log) {
  mmsb::Expected<mmsb::LogState> state = mmsb::Replay(log);
  if (!state.ok()) return state.status();
  mmsb::Expected<std::unique_ptr<mmsb::LogWriter>> writer = mmsb::LogWriter::Open(log);
  if (!writer.ok()) return writer.status();
  mmsb::Expected<std::string> path =
      mmsb::WriteLogCheckpoint(**writer, mmsb::ContentsOf(*state, (*writer)->log_id()));
  if (!path.ok()) return path.status();
  MMSB_RETURN_IF_ERROR((*writer)->Close());
  return path;
}

TEST(DocsApiCheckpoint, WriteLoadAndNoteCheckpoints) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  ASSERT_OK(WriteTwoEpochs(dir));
  ::testing::internal::CaptureStdout();
  ASSERT_OK(CompactTo(dir, tmp.Sub("snapshot.ckpt")));
  EXPECT_NE(::testing::internal::GetCapturedStdout().find(" bytes, epoch 2\n"), std::string::npos);
  auto path = CheckpointLog(dir);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(std::filesystem::path(*path).filename(), "ckpt-00000000000000000002.ckpt");
  mmsb::ReplayReport report;
  ASSERT_TRUE(mmsb::Replay(dir, {}, &report).ok());
  EXPECT_EQ(report.checkpoint_epoch, 2u);
  // A damaged checkpoint is refused whole.
  {
    std::fstream f(tmp.Sub("snapshot.ckpt"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  EXPECT_EQ(mmsb::LoadCheckpoint(tmp.Sub("snapshot.ckpt")).status().code(),
            mmsb::StatusCode::kCorruption);
  // By hand: one raw page.
  const std::uint8_t bytes[16] = {1, 2, 3};
  mmsb::CheckpointContents contents;
  contents.epoch = 9;
  contents.page_id_high = 1;
  contents.pages.push_back(
      {/*id=*/1, /*epoch=*/9, mmsb::Location::kCpu, /*is_static=*/true, "table", "", bytes});
  mmsb::CheckpointOptions no_sync;
  no_sync.sync = false;
  ASSERT_TRUE(mmsb::WriteCheckpointFile(tmp.Sub("hand.ckpt"), contents, no_sync).ok());
  auto st = mmsb::LoadCheckpoint(tmp.Sub("hand.ckpt"));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->FindPageByName("table")->bytes[2], 3);
}

}  // namespace
