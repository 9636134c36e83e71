// The IR store: generations, content addressing, retention, untrusted input, concurrency and
// killed writers.
#include "mmsb/ir/store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "ir_test_util.h"

namespace mmsb::ir {
namespace {

using testing::Fn;
using testing::Scalar;
using testing::ScalarText;
using testing::TempDir;
using testing::Tu;

std::unique_ptr<Store> OpenOrDie(const std::string& path, StoreOptions options = {}) {
  auto s = Store::Open(path, Store::Mode::kReadWrite, std::move(options));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

std::int64_t Add(Store& store, const TuCapture& c, const std::string& gen = "") {
  auto g = store.AddCapture(c, GenerationRequest{gen});
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : -1;
}

// (TU, name, stage) -> text hash, as generation `gen` sees it.
std::map<std::string, std::string> View(Store& store, std::int64_t gen) {
  auto fs = store.Functions(gen, std::nullopt);
  EXPECT_TRUE(fs.ok()) << fs.status().ToString();
  std::map<std::string, std::string> out;
  for (const FunctionVersion& v : *fs)
    out[v.tu_source + "|" + v.name + "|" + StageName(v.stage)] = HexOf(v.text_hash);
  return out;
}

TEST(IrStore, NewStoreUsesWalAndIsRecognised) {
  TempDir dir;
  const std::string path = dir.Sub("sub/dir/ir.db");
  auto store = OpenOrDie(path);
  EXPECT_EQ(ScalarText(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(ScalarText(path, "SELECT value FROM meta WHERE key='format'"), "mmsb-ir");
  // Reopening an existing store works in both modes.
  store.reset();
  EXPECT_TRUE(Store::Open(path, Store::Mode::kExisting).ok());
}

TEST(IrStore, MissingStoreIsNotFoundWithoutCreate) {
  TempDir dir;
  auto s = Store::Open(dir.Sub("nope.db"), Store::Mode::kExisting);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("nope.db")));
}

TEST(IrStore, TusOfOneBuildJoinTheOpenGeneration) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "ret")})), 1);
  EXPECT_EQ(Add(*store, Tu("/p/b.cc", {Fn("b", "ret")})), 1);
  EXPECT_EQ(Add(*store, Tu("/p/c.cc", {Fn("c", "ret")})), 1);
  auto gens = store->Generations(true);
  ASSERT_TRUE(gens.ok());
  ASSERT_EQ(gens->size(), 1u);
  EXPECT_EQ((*gens)[0].own_tus, 3);
  EXPECT_EQ((*gens)[0].functions, 3);
  EXPECT_TRUE((*gens)[0].is_open);
}

TEST(IrStore, RecompiledTuOpensNewGenerationInheritingTheOthers) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, Tu("/p/a.cc", {Fn("a", "ret")}));
  Add(*store, Tu("/p/b.cc", {Fn("b", "ret")}));
  // Incremental build: only a.cc recompiles, with a change.
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "add\nret")})), 2);
  auto view = View(*store, 2);
  EXPECT_EQ(view.size(), 2u);
  EXPECT_EQ(view.count("/p/b.cc|b|pre"), 1u);  // inherited from generation 1
  EXPECT_NE(view["/p/a.cc|a|pre"], View(*store, 1)["/p/a.cc|a|pre"]);
  // b.cc now recompiles: it has no capture in 2 yet, so it joins 2.
  EXPECT_EQ(Add(*store, Tu("/p/b.cc", {Fn("b", "ret")})), 2);
  // And a third compile of a.cc opens 3.
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "ret")})), 3);
  auto gens = store->Generations(true);
  ASSERT_TRUE(gens.ok());
  ASSERT_EQ(gens->size(), 3u);
  EXPECT_EQ((*gens)[1].own_tus, 2);
  EXPECT_EQ((*gens)[1].visible_tus, 2);
  EXPECT_EQ((*gens)[1].changed_pre, 1);
  EXPECT_EQ((*gens)[2].own_tus, 1);
  EXPECT_EQ((*gens)[2].visible_tus, 2);
  EXPECT_EQ((*gens)[2].changed_pre, 1);
  EXPECT_FALSE((*gens)[1].is_open);
  EXPECT_TRUE((*gens)[2].is_open);
}

TEST(IrStore, UnchangedRebuildCostsOneCaptureRowAndNoBlob) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  auto store = OpenOrDie(path);
  std::vector<FunctionRecord> fns;
  for (int i = 0; i < 50; ++i) {
    fns.push_back(Fn("f" + std::to_string(i), "x" + std::to_string(i)));
    fns.push_back(Fn("f" + std::to_string(i), "y" + std::to_string(i), Stage::kPost));
  }
  Add(*store, Tu("/p/a.cc", fns));
  const long long blobs = Scalar(path, "SELECT count(*) FROM blobs");
  const long long entries = Scalar(path, "SELECT count(*) FROM entries");
  EXPECT_EQ(blobs, 100);
  EXPECT_EQ(entries, 100);
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", fns)), 2);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), blobs);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM entries"), entries);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM captures"), 2);
  // One changed function: a new manifest (one row per function) and exactly one new blob.
  fns[0] = Fn("f0", "changed");
  Add(*store, Tu("/p/a.cc", fns));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), blobs + 1);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM entries"), entries * 2);
}

TEST(IrStore, IdenticalFunctionsShareOneBlobAcrossTus) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  auto store = OpenOrDie(path);
  FunctionRecord inl = Fn("_ZN3std6vectorIiE9push_backEi", "inline body");
  Add(*store, Tu("/p/a.cc", {inl, Fn("a", "1")}));
  Add(*store, Tu("/p/b.cc", {inl, Fn("b", "2")}));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), 3);
}

// Text that zstd cannot shrink much: 2,000 characters of 36 make ~1.4 KiB frames, above the
// quarter page a WITHOUT ROWID leaf keeps of a row.
std::string Incompressible(std::uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::string out;
  while (out.size() < n) out += "0123456789abcdefghijklmnopqrstuvwxyz"[rng() % 36];
  return out;
}

TEST(IrStore, KilobyteBlobsFillTheirPages) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  auto store = OpenOrDie(path);
  std::vector<FunctionRecord> fns;
  for (int i = 0; i < 300; ++i) fns.push_back(Fn("f" + std::to_string(i), Incompressible(i, 2000)));
  Add(*store, Tu("/p/a.cc", fns));
  store.reset();
  const long long payload = Scalar(path, "SELECT sum(length(data)) FROM blobs");
  const long long pages = Scalar(path, "SELECT sum(pgsize) FROM dbstat WHERE name='blobs'");
  if (pages < 0) GTEST_SKIP() << "this SQLite has no dbstat table";
  ASSERT_GT(payload, 300 * 1024);
  // ~1.4 KiB frames: a rowid table's leaves hold two or three of them (~1.5x the payload); a
  // WITHOUT ROWID table keeps ~0.5 KiB of each in its leaf and the rest on an overflow page of
  // its own (~3.4x).
  EXPECT_LT(static_cast<double>(pages), 2.0 * static_cast<double>(payload));
}

TEST(IrStore, OldWithoutRowidBlobsTableStillReadsAndDedups) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  std::vector<FunctionRecord> fns = {Fn("a", "1"), Fn("b", Incompressible(1, 3000))};
  TextHash h;
  {
    auto store = OpenOrDie(path);
    Add(*store, Tu("/p/a.cc", fns));
    h = store->Functions(1, Stage::kPre)->at(1).text_hash;
  }
  {
    // The layout of stores made before blobs became a rowid table.
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    ASSERT_EQ(sqlite3_exec(db,
                           "BEGIN;"
                           "CREATE TABLE old_blobs(hash BLOB PRIMARY KEY, raw_size INTEGER NOT "
                           "NULL, data BLOB NOT NULL) WITHOUT ROWID;"
                           "INSERT INTO old_blobs SELECT hash, raw_size, data FROM blobs;"
                           "DROP TABLE blobs; ALTER TABLE old_blobs RENAME TO blobs; COMMIT;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_NE(ScalarText(path, "SELECT sql FROM sqlite_schema WHERE name='blobs'").find("WITHOUT"),
            std::string::npos);
  auto store = OpenOrDie(path);
  auto text = store->Text(h);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, fns[1].text);
  Add(*store, Tu("/p/b.cc", fns));  // the same texts: no new blob
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), 2);
  fns[0] = Fn("a", "changed");
  Add(*store, Tu("/p/a.cc", fns));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), 3);
}

// IR-like text: lines of a small vocabulary with varying operands, as a build's functions share
// their instructions, types and names.
std::string IrLike(std::uint64_t seed, std::size_t n) {
  static const char* const kLines[] = {
      "  %%%d = load i32, ptr %%%d, align 4",
      "  %%%d = getelementptr inbounds %%\"struct.mmsb::Page\", ptr %%%d, i64 0, i32 2",
      "  store i64 %%%d, ptr %%%d, align 8",
      "  %%%d = call noundef i64 @_ZNK4mmsb4Page4sizeEv(ptr noundef nonnull align 8 %%%d)",
      "  br i1 %%%d, label %%%d, label %%bb.end",
      "  %%%d = icmp eq i64 %%%d, 0",
      "  %%%d = add nsw i32 %%%d, 1",
      "  call void @llvm.memcpy.p0.p0.i64(ptr align 8 %%%d, ptr align 8 %%%d, i64 64, i1 false)",
      "  %%%d = phi i64 [ 0, %%entry ], [ %%%d, %%loop ]",
      "  ret void ; %%%d %%%d"};
  std::mt19937_64 rng(seed);
  std::string out;
  char line[256];
  while (out.size() < n) {
    const int a = static_cast<int>(rng() % 64), b = static_cast<int>(rng() % 64);
    std::snprintf(line, sizeof line, kLines[rng() % std::size(kLines)], a, b);
    out += line;
    out += '\n';
  }
  return out;
}

std::vector<FunctionRecord> IrLikeFunctions(const std::string& prefix, int n, std::uint64_t seed) {
  std::vector<FunctionRecord> fns;
  for (int i = 0; i < n; ++i)
    fns.push_back(Fn(prefix + std::to_string(i), IrLike(seed * 100000 + i, 2000)));
  return fns;
}

void ExpectTextsRead(Store& store, const std::vector<FunctionRecord>& fns, std::int64_t gen) {
  auto versions = store.Functions(gen, Stage::kPre);
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  std::map<std::string, const FunctionRecord*> by_name;
  for (const FunctionRecord& f : fns) by_name[f.name] = &f;
  int read = 0;
  for (const FunctionVersion& v : *versions) {
    auto it = by_name.find(v.name);
    if (it == by_name.end()) continue;
    auto text = store.Text(v.text_hash);
    ASSERT_TRUE(text.ok()) << text.status().ToString();
    EXPECT_EQ(*text, it->second->text);
    ++read;
  }
  EXPECT_EQ(read, static_cast<int>(fns.size()));
}

TEST(IrStore, DictionaryIsTrainedOnceEnoughTextIsStoredAndFramesUseIt) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  StoreOptions options;
  options.dictionary_training_bytes = 256 << 10;
  auto store = OpenOrDie(path, options);
  const auto a = IrLikeFunctions("a", 50, 1);   // ~100 KB: too little to train on
  const auto b = IrLikeFunctions("b", 100, 2);  // with a's texts, enough
  const auto c = IrLikeFunctions("c", 100, 3);
  Add(*store, Tu("/p/a.cc", a));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM dicts"), 0);
  Add(*store, Tu("/p/b.cc", b));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM dicts"), 1);
  Add(*store, Tu("/p/c.cc", c));
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM dicts"), 1);  // later captures reuse it
  store.reset();

  // A new reader finds the dictionary its frames name.
  auto reader = Store::Open(path, Store::Mode::kExisting);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (const auto* fns : {&a, &b, &c}) ExpectTextsRead(**reader, *fns, 1);

  // The same texts compressed alone take far more room.
  const std::string plain_path = dir.Sub("plain.db");
  StoreOptions no_dict;
  no_dict.dictionary_training_bytes = 0;
  auto plain = OpenOrDie(plain_path, no_dict);
  for (const auto* fns : {&a, &b, &c}) Add(*plain, Tu("/p/x.cc", *fns));
  plain.reset();
  EXPECT_EQ(Scalar(plain_path, "SELECT count(*) FROM dicts"), 0);
  const long long with_dict = Scalar(path, "SELECT sum(length(data)) FROM blobs");
  const long long alone = Scalar(plain_path, "SELECT sum(length(data)) FROM blobs");
  EXPECT_LT(static_cast<double>(with_dict), 0.8 * static_cast<double>(alone))
      << with_dict << " bytes with the dictionary, " << alone << " without";
}

TEST(IrStore, SchemaOneStoreReadsAndBecomesSchemaTwoWithItsFirstDictionary) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  const auto a = IrLikeFunctions("a", 20, 1);
  {
    StoreOptions no_dict;
    no_dict.dictionary_training_bytes = 0;
    Add(*OpenOrDie(path, no_dict), Tu("/p/a.cc", a));
  }
  {
    // The layout of a store made before dictionaries.
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE dicts; UPDATE meta SET value='1' WHERE key='schema'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  StoreOptions options;
  options.dictionary_training_bytes = 128 << 10;
  auto store = OpenOrDie(path, options);
  ExpectTextsRead(*store, a, 1);
  const auto b = IrLikeFunctions("b", 10, 2);  // with a's, still too little to train on
  Add(*store, Tu("/p/b.cc", b));
  EXPECT_EQ(ScalarText(path, "SELECT value FROM meta WHERE key='schema'"), "1");
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM sqlite_schema WHERE name='dicts'"), 0);
  const auto c = IrLikeFunctions("c", 60, 3);
  Add(*store, Tu("/p/c.cc", c));
  EXPECT_EQ(ScalarText(path, "SELECT value FROM meta WHERE key='schema'"), "2");
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM dicts"), 1);
  store.reset();
  auto reader = OpenOrDie(path);
  for (const auto* fns : {&a, &b, &c}) ExpectTextsRead(*reader, *fns, 1);
}

TEST(IrStore, MissingOrDamagedDictionaryIsCorruptionNotACrash) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  StoreOptions options;
  options.dictionary_training_bytes = 128 << 10;
  const auto a = IrLikeFunctions("a", 80, 1);
  Add(*OpenOrDie(path, options), Tu("/p/a.cc", a));
  ASSERT_EQ(Scalar(path, "SELECT count(*) FROM dicts"), 1);
  auto exec = [&](const char* sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  };
  auto first_text = [&]() -> Status {
    auto store = OpenOrDie(path, options);
    auto text = store->Text(store->Functions(1, Stage::kPre)->at(0).text_hash);
    return text.status();
  };
  const std::string saved = ScalarText(path, "SELECT hex(dict) FROM dicts");
  const long long saved_id = Scalar(path, "SELECT id FROM dicts");
  exec("UPDATE dicts SET dict = X'37A430EC0102030405060708'");  // zstd's magic, garbage after
  Status s = first_text();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("dictionary"), std::string::npos) << s.ToString();
  exec("DELETE FROM dicts");
  s = first_text();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("dictionary"), std::string::npos) << s.ToString();
  // Captures go on (a new dictionary is trained; the old frames stay unreadable until the
  // dictionary they name is back).
  const auto b = IrLikeFunctions("b", 80, 2);
  auto store = OpenOrDie(path, options);
  const std::int64_t gen = Add(*store, Tu("/p/b.cc", b));
  ExpectTextsRead(*store, b, gen);
  store.reset();
  exec(("INSERT INTO dicts(id, created_at_ms, samples, dict) VALUES(" + std::to_string(saved_id) +
        ", 0, 0, X'" + saved + "')")
           .c_str());
  ExpectTextsRead(*OpenOrDie(path, options), a, 1);
}

TEST(IrStore, ExplicitGenerationByIdAndByLabel) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "1")}), "7"), 7);
  EXPECT_EQ(Add(*store, Tu("/p/b.cc", {Fn("b", "1")}), "7"), 7);
  // Recompiling a TU within an explicit generation replaces its capture there.
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "2")}), "7"), 7);
  auto gens = store->Generations(false);
  ASSERT_TRUE(gens.ok());
  ASSERT_EQ(gens->size(), 1u);
  EXPECT_TRUE((*gens)[0].is_explicit);
  EXPECT_EQ((*gens)[0].own_tus, 2);
  EXPECT_EQ(store->Text(store->Functions(7, Stage::kPre)->at(0).text_hash).value(),
            Fn("a", "2").text);
  // A label names a new generation after the newest one.
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "3")}), "v1.2"), 8);
  EXPECT_EQ(store->ResolveGeneration("v1.2").value(), 8);
  // Automatic captures after an explicit generation open a new one.
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "4")})), 9);
}

TEST(IrStore, BeginGenerationStartsTheNextBuild) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, Tu("/p/a.cc", {Fn("a", "1")}));
  ASSERT_TRUE(store->BeginGeneration("build-42").ok());
  // b.cc has no capture in generation 1, but the pre-build step closed it.
  EXPECT_EQ(Add(*store, Tu("/p/b.cc", {Fn("b", "1")})), 2);
  EXPECT_EQ(Add(*store, Tu("/p/a.cc", {Fn("a", "1")})), 2);
  EXPECT_EQ(store->ResolveGeneration("build-42").value(), 2);
  // Nothing compiled after a begin: no empty generation appears.
  ASSERT_TRUE(store->BeginGeneration("").ok());
  EXPECT_EQ(store->Generations(false)->size(), 2u);
}

TEST(IrStore, ResolvesLatestAndRelativeGenerations) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  for (int i = 0; i < 4; ++i) Add(*store, Tu("/p/a.cc", {Fn("a", std::to_string(i))}));
  EXPECT_EQ(store->ResolveGeneration("latest").value(), 4);
  EXPECT_EQ(store->ResolveGeneration("latest~1").value(), 3);
  EXPECT_EQ(store->ResolveGeneration("2").value(), 2);
  EXPECT_EQ(store->ResolveGeneration("latest~9").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->ResolveGeneration("12").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->ResolveGeneration("nolabel").status().code(), StatusCode::kNotFound);
}

TEST(IrStore, FindFunctionsByMangledDemangledAndBaseName) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, Tu("/p/a.cc", {Fn("_Z4stepf", "1"), Fn("_Z4stepi", "2"), Fn("main", "3")}));
  EXPECT_EQ(store->FindFunctions("_Z4stepf")->size(), 1u);
  EXPECT_EQ(store->FindFunctions("step(float)")->size(), 1u);
  EXPECT_EQ(store->FindFunctions("step")->size(), 2u);
  EXPECT_EQ(store->FindFunctions("main")->size(), 1u);
  EXPECT_TRUE(store->FindFunctions("absent")->empty());
}

TEST(IrStore, HistoryListsEveryCaptureOfTheTu) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, Tu("/p/a.cc", {Fn("a", "1")}));
  Add(*store, Tu("/p/a.cc", {Fn("a", "1"), Fn("b", "1")}));
  Add(*store, Tu("/p/a.cc", {Fn("a", "2"), Fn("b", "1")}));
  Add(*store, Tu("/p/a.cc", {Fn("b", "1")}));
  auto id = store->FindFunctions("a");
  ASSERT_EQ(id->size(), 1u);
  auto h = store->History((*id)[0].func_id, Stage::kPre);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 4u);
  EXPECT_TRUE((*h)[0].version.has_value());
  EXPECT_FALSE((*h)[3].version.has_value());
  EXPECT_EQ((*h)[0].version->text_hash, (*h)[1].version->text_hash);
  EXPECT_NE((*h)[1].version->text_hash, (*h)[2].version->text_hash);
}

TEST(IrStore, GcKeepsExactlyWhatKeptGenerationsSee) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  auto store = OpenOrDie(path);
  Add(*store, Tu("/p/a.cc", {Fn("a", "1")}));
  Add(*store, Tu("/p/b.cc", {Fn("b", "1")}));  // gen 1
  Add(*store, Tu("/p/a.cc", {Fn("a", "2")}));  // gen 2 (b inherited from 1)
  Add(*store, Tu("/p/a.cc", {Fn("a", "3")}));  // gen 3
  Add(*store, Tu("/p/a.cc", {Fn("a", "4")}));  // gen 4
  const auto v3 = View(*store, 3);
  const auto v4 = View(*store, 4);
  auto r = store->Gc(2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->generations_removed, 2);
  EXPECT_EQ(r->blobs_removed, 2);  // a@1 and a@2
  EXPECT_EQ(View(*store, 3), v3);
  EXPECT_EQ(View(*store, 4), v4);
  EXPECT_EQ(store->ResolveGeneration("1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), 3);  // a3, a4, b1
  EXPECT_EQ(ScalarText(path, "PRAGMA integrity_check"), "ok");
  // Keeping more than there are changes nothing.
  EXPECT_EQ(store->Gc(10)->generations_removed, 0);
  EXPECT_FALSE(store->Gc(0).ok());
}

TEST(IrStore, ForeignDatabaseIsRejectedAndLeftAlone) {
  TempDir dir;
  const std::string path = dir.Sub("other.db");
  {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)", nullptr, nullptr,
                 nullptr);
    sqlite3_close(db);
  }
  auto s = Store::Open(path, Store::Mode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("not an MMSB IR store"), std::string::npos);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM sqlite_schema"), 1);
}

TEST(IrStore, NonDatabaseFileIsCorruption) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  std::ofstream(path) << std::string(8192, 'x');
  auto s = Store::Open(path, Store::Mode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption) << s.status().ToString();
}

TEST(IrStore, NewerSchemaIsRejected) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  OpenOrDie(path).reset();
  {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema'", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  auto s = Store::Open(path, Store::Mode::kReadWrite);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("newer"), std::string::npos);
}

TEST(IrStore, DamagedBlobIsCorruptionNotACrash) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  auto store = OpenOrDie(path);
  Add(*store, Tu("/p/a.cc", {Fn("a", "some body text that compresses")}));
  const TextHash h = store->Functions(1, Stage::kPre)->at(0).text_hash;
  {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "UPDATE blobs SET data = X'28B52FFD0000DEADBEEF'", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  auto t = store->Text(h);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorruption);
  {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "UPDATE blobs SET raw_size = 1099511627776", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  EXPECT_EQ(store->Text(h).status().code(), StatusCode::kCorruption);
}

// Flips bytes all over a real store file: every operation returns a status or a result, and
// nothing crashes (run under ASan in the sanitizer preset).
TEST(IrStore, BitFlippedFilesNeverCrashTheReader) {
  TempDir dir;
  const std::string good = dir.Sub("good.db");
  {
    auto store = OpenOrDie(good);
    for (int i = 0; i < 20; ++i)
      Add(*store, Tu("/p/t" + std::to_string(i % 5) + ".cc",
                     {Fn("f" + std::to_string(i), std::string(200, 'a' + i % 26)),
                      Fn("g", std::to_string(i), Stage::kPost)}));
    sqlite3* db = nullptr;
    sqlite3_open(good.c_str(), &db);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 4096u);
  std::mt19937 rng(1234);
  for (int round = 0; round < 60; ++round) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i)
      damaged[rng() % damaged.size()] ^= static_cast<char>(1 << (rng() % 8));
    const std::string path = dir.Sub("bad" + std::to_string(round) + ".db");
    std::ofstream(path, std::ios::binary) << damaged;
    auto s = Store::Open(path, Store::Mode::kExisting,
                         StoreOptions{.busy_timeout_ms = 10, .max_wait_ms = 50});
    if (!s.ok()) continue;
    Store& store = **s;
    auto gens = store.Generations(true);
    for (const char* spec : {"latest", "1", "3"}) {
      auto g = store.ResolveGeneration(spec);
      if (!g.ok()) continue;
      auto fs = store.Functions(*g, std::nullopt);
      if (!fs.ok()) continue;
      for (const FunctionVersion& v : *fs) (void)store.Text(v.text_hash);
    }
    (void)store.AddCapture(Tu("/p/new.cc", {Fn("n", "1")}), {});
  }
}

// A writer killed in the middle of its transaction leaves the store as it was.
TEST(IrStore, WriterKilledMidTransactionLeavesStoreConsistent) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  {
    auto store = OpenOrDie(path);
    Add(*store, Tu("/p/a.cc", {Fn("a", "1")}));
  }
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StoreOptions o;
    o.fault_in_transaction = [] { std::raise(SIGKILL); };
    auto s = Store::Open(path, Store::Mode::kReadWrite, o);
    std::vector<FunctionRecord> fns;
    for (int i = 0; i < 200; ++i) fns.push_back(Fn("k" + std::to_string(i), std::to_string(i)));
    if (s.ok()) (void)(*s)->AddCapture(Tu("/p/b.cc", fns), {});
    _exit(0);  // not reached when the fault fired
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  EXPECT_EQ(ScalarText(path, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM captures"), 1);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM blobs"), 1);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM entries"), 1);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM tus"), 1);
  // The store keeps working; the TU the killed writer was capturing joins generation 1.
  auto store = OpenOrDie(path);
  EXPECT_EQ(Add(*store, Tu("/p/b.cc", {Fn("b", "1")})), 1);
}

// Many processes write one store at once (make -j): every capture arrives.
TEST(IrStore, SixteenConcurrentWritersLoseNothing) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  constexpr int kWriters = 16;
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Every writer may be the one that creates the store.
      StoreOptions o;
      o.busy_timeout_ms = 50;  // exercise the retry loop, not only SQLite's busy handler
      int rc = 0;
      for (int round = 0; round < 3 && rc == 0; ++round) {
        auto s = Store::Open(path, Store::Mode::kReadWrite, o);
        if (!s.ok()) {
          std::fprintf(stderr, "writer %d round %d: open: %s\n", w, round,
                       s.status().ToString().c_str());
          rc = 1;
          break;
        }
        std::vector<FunctionRecord> fns;
        for (int i = 0; i < 40; ++i)
          fns.push_back(Fn("w" + std::to_string(w) + "_" + std::to_string(i),
                           std::to_string(round * 1000 + i)));
        const auto added = (*s)->AddCapture(Tu("/p/w" + std::to_string(w) + ".cc", fns), {});
        if (!added.ok()) {
          std::fprintf(stderr, "writer %d round %d: capture: %s\n", w, round,
                       added.status().ToString().c_str());
          rc = 2;
        }
      }
      _exit(rc);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
  }
  EXPECT_EQ(ScalarText(path, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM captures"), kWriters * 3);
  EXPECT_EQ(Scalar(path, "SELECT count(*) FROM tus"), kWriters);
  // Each TU compiled three times: at least three generations, and the latest sees all TUs with
  // their last round.
  auto store = OpenOrDie(path);
  auto latest = store->ResolveGeneration("latest");
  ASSERT_TRUE(latest.ok());
  auto fs = store->Functions(*latest, Stage::kPre);
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ(fs->size(), static_cast<size_t>(kWriters * 40));
  EXPECT_GE(store->Generations(false)->size(), 3u);
}

TEST(IrStore, StorePathResolution) {
  TempDir dir;
  namespace fs = std::filesystem;
  unsetenv(kStoreEnv);
  fs::create_directories(dir.path() + "/build/CMakeFiles/t.dir/src");
  std::ofstream(dir.path() + "/build/CMakeCache.txt") << "";
  // The nearest CMake build root above the output directory.
  EXPECT_EQ(ResolveStorePath(dir.path() + "/build/CMakeFiles/t.dir/src", dir.path()),
            dir.path() + "/build/.mmsb/ir.db");
  // No build root: the working directory.
  EXPECT_EQ(ResolveStorePath(dir.path() + "/elsewhere", dir.path() + "/wd"),
            dir.path() + "/wd/.mmsb/ir.db");
  // An existing store nearer than the build root wins.
  fs::create_directories(dir.path() + "/build/CMakeFiles/.mmsb");
  std::ofstream(dir.path() + "/build/CMakeFiles/.mmsb/ir.db") << "";
  EXPECT_EQ(ResolveStorePath(dir.path() + "/build/CMakeFiles/t.dir/src", dir.path()),
            dir.path() + "/build/CMakeFiles/.mmsb/ir.db");
  // A build tree nested in another gets its own store, even when the outer one has a store.
  fs::create_directories(dir.path() + "/build/.mmsb");
  std::ofstream(dir.path() + "/build/.mmsb/ir.db") << "";
  fs::create_directories(dir.path() + "/build/tests/consumer/obj");
  std::ofstream(dir.path() + "/build/tests/consumer/CMakeCache.txt") << "";
  EXPECT_EQ(ResolveStorePath(dir.path() + "/build/tests/consumer/obj", dir.path()),
            dir.path() + "/build/tests/consumer/.mmsb/ir.db");
  // MMSB_IR_STORE overrides everything; a directory means ir.db in it.
  setenv(kStoreEnv, (dir.path() + "/x.db").c_str(), 1);
  EXPECT_EQ(ResolveStorePath("/", "/"), dir.path() + "/x.db");
  setenv(kStoreEnv, dir.path().c_str(), 1);
  EXPECT_EQ(ResolveStorePath("/", "/"), dir.path() + "/ir.db");
  unsetenv(kStoreEnv);
}

}  // namespace
}  // namespace mmsb::ir
