// The IR store: an embedded SQLite database (WAL mode) that keeps every captured function
// version, keyed by build generation. Layout and rules are in docs/IRStore.md; the schema is in
// src/store_schema.h. Needs no LLVM: the `mmsb` CLI links it without LLVM.
//
// - Blobs are content-addressed (XXH3-128 of the normalised text) and zstd-compressed; a TU's
//   capture is a manifest of (function, stage) -> blob rows. An unchanged function costs one
//   manifest row and no blob; an unchanged TU costs one capture row (its manifest is reused).
// - Generations: a capture joins the open generation unless its TU already has a capture there;
//   then the open generation closes and a new one opens. A generation sees, for every TU, the
//   TU's latest capture at or before it ("inherits the other TUs"). MMSB_BUILD_GENERATION
//   (GenerationRequest::explicit_generation) and BeginGeneration() override the automatic rule.
// - Concurrency: many processes may write one store at once. Every write is one BEGIN IMMEDIATE
//   transaction, retried while the database is busy; a process killed mid-write leaves the store
//   as it was before that write.
// - Untrusted input: a file that is not an SQLite database, a database that is not an MMSB IR
//   store, a newer schema, or a blob that does not decompress to its hash gives a Corruption or
//   FailedPrecondition status, never a crash.
//
// Thread-safety: a Store is one SQLite connection; use it from one thread at a time. Separate
// Store objects (in one or many processes) may use the same file concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/ir/record.h"
#include "mmsb/status.h"

namespace mmsb::ir {

// Environment variables (read by the plugin and the CLI, documented in docs/IRStore.md).
inline constexpr char kStoreEnv[] = "MMSB_IR_STORE";               // store path or directory
inline constexpr char kGenerationEnv[] = "MMSB_BUILD_GENERATION";  // explicit generation
// Seconds a write (a compile's capture, gc, new-generation) waits for the store's write lock
// before it gives up (default 600). See StoreOptionsFromEnv.
inline constexpr char kWaitEnv[] = "MMSB_IR_WAIT_SECONDS";
inline constexpr char kCaptureEnv[] = "MMSB_IR_CAPTURE";  // "0" disables capture

// Where a store lives. MMSB_IR_STORE when set (a directory means <dir>/ir.db). Otherwise
// <d>/.mmsb/ir.db for the nearest directory <d>, `start_dir` or above, that holds .mmsb/ir.db or
// is a CMake build tree root (holds CMakeCache.txt); otherwise <fallback_dir>/.mmsb/ir.db. A
// compile passes the directory of its output as `start_dir` and its working directory as
// `fallback_dir`; the CLI passes its working directory as both.
std::string ResolveStorePath(const std::string& start_dir, const std::string& fallback_dir);

// How a capture picks its generation.
struct GenerationRequest {
  // An id ("42") or a label ("v1.2", a commit hash): join that generation, creating it when it
  // does not exist; a TU captured there again replaces its earlier capture. Empty: automatic.
  std::string explicit_generation;
};

struct GenerationInfo {
  std::int64_t id = 0;
  std::int64_t opened_at_ms = 0;  // Unix time of the first capture
  std::string label;              // "" when none
  bool is_explicit = false;       // named by MMSB_BUILD_GENERATION
  bool is_open = false;           // the next automatic capture may join it
  std::string compiler;           // of the capture that opened it
  std::string flags_hash;         // of the capture that opened it
  bool mixed_flags = false;       // its own captures disagree on flags or compiler
  int own_tus = 0;                // TUs captured in this generation
  int visible_tus = 0;            // TUs it sees (own plus inherited)
  int functions = 0;              // distinct (TU, function) pairs it sees, any stage
  // Functions added, removed or changed against the previous generation; unset for the first.
  std::optional<int> changed_pre;
  std::optional<int> changed_post;
};

// A function version as one generation sees it.
struct FunctionVersion {
  std::int64_t func_id = 0;  // the IR page identity: (TU, name)
  std::string tu_source;
  std::string tu_output;
  std::string name;
  Stage stage = Stage::kPre;
  TextHash text_hash{};
  std::uint64_t structural_hash = 0;
  std::uint32_t instructions = 0;
  std::uint32_t blocks = 0;
  std::string linkage;
  std::string file;
  std::uint32_t line = 0;
  std::vector<std::string> page_types;
  std::int64_t captured_in = 0;  // the generation whose capture this version comes from
};

// One capture of a TU, for history: the version of one function in it (absent when the
// capture did not define the function).
struct CaptureVersion {
  std::int64_t generation = 0;
  std::int64_t captured_at_ms = 0;
  std::optional<FunctionVersion> version;
};

// A translation unit of a built program, as its object's unit note names it (the build record of
// a log lists them; docs/SerializationSpec.md, "Unit notes").
struct UnitRef {
  std::string source;              // the main file as the compiler was given it
  std::uint64_t content_hash = 0;  // the TU's content hash (TuCapture::unit_hash)
};

// Where the store has a unit.
struct UnitMatch {
  UnitRef unit;
  std::int64_t captured_in = 0;  // the generation of the capture with the unit's hash; 0: none
  std::string tu_source;         // that capture's TU (absolute paths); "" when none
  std::string tu_output;
};

// The generation a build was made from, by its units' content hashes.
struct BuildMatch {
  std::vector<UnitMatch> units;  // in the order given
  int known = 0;                 // units whose hash some capture has
  // The first generation of the latest run of consecutive generations that see every known
  // unit's hash (a generation sees a TU's latest capture at or before it), and the last of that
  // run; 0 when no unit is known or no generation sees them all (units from different stores, or
  // a TU captured since without its hash). The first, not the last: a rebuild that changed none
  // of these units adds generations that see the same code, and the code change that made this
  // build is the one between `generation` and the generation before it.
  std::int64_t generation = 0;
  std::int64_t last_generation = 0;
};

struct GcResult {
  int generations_removed = 0;
  std::int64_t blobs_removed = 0;
  std::int64_t bytes_before = 0;
  std::int64_t bytes_after = 0;
};

struct StoreOptions {
  int busy_timeout_ms = 10000;  // SQLite's own wait for a lock, per statement
  int max_wait_ms = 600000;     // total wait for the write lock before a write gives up
  // A store without a compression dictionary trains one (docs/IRStore.md, "Compression") once
  // a capture's new texts and the texts already stored add up to this many bytes; 0: never.
  std::int64_t dictionary_training_bytes = 1 << 20;
  // Fault injection for tests: called inside AddCapture's write transaction, after the blobs
  // and half the manifest rows are written and before the commit.
  std::function<void()> fault_in_transaction;
  // Called once per write when it starts waiting for the write lock, with who holds it ("pid
  // 1234 (clang++-19)", or "another process" when the holder cannot be found).
  std::function<void(const std::string& holder)> on_wait;
};

// Defaults, with max_wait_ms from MMSB_IR_WAIT_SECONDS when that is set to a whole number of
// seconds (0: do not wait). InvalidArgument names a malformed value.
Expected<StoreOptions> StoreOptionsFromEnv();

// Who holds the write lock of the store at `path` ("pid N (command)"), or "" when nobody does
// or it cannot be told (the lock is SQLite's WAL write lock, a POSIX lock on `path`-shm).
std::string WriteLockHolder(const std::string& path);

class Store {
 public:
  enum class Mode {
    kReadWrite,  // create the database (and its directory) when missing
    kExisting,   // read and write an existing store only
  };

  static Expected<std::unique_ptr<Store>> Open(const std::string& path, Mode mode,
                                               const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // Writes one compile's capture in a single transaction; returns its generation.
  Expected<std::int64_t> AddCapture(const TuCapture& capture, const GenerationRequest& request);

  // Closes the open generation, so that the next automatic capture opens a new one, with
  // `label` when not empty. The CMake pre-build step (cmake/MmsbIr.cmake) runs this.
  Status BeginGeneration(const std::string& label);

  // All generations, oldest first. With `with_changes`, fills changed_pre/changed_post.
  Expected<std::vector<GenerationInfo>> Generations(bool with_changes);

  // "42", "latest", "latest~N" (N generations before the latest) or a label.
  Expected<std::int64_t> ResolveGeneration(std::string_view spec);

  // Every function version generation `generation` sees, at `stage` or at both stages,
  // ordered by TU and name.
  Expected<std::vector<FunctionVersion>> Functions(std::int64_t generation,
                                                   std::optional<Stage> stage);

  // The normalised text behind a hash; Corruption when the blob is damaged.
  Expected<std::string> Text(const TextHash& hash);

  // Every capture of the TU of `func_id`, oldest first, with the function's version at `stage`.
  Expected<std::vector<CaptureVersion>> History(std::int64_t func_id, Stage stage);

  // The functions `query` names best, by NameMatchRank (mmsb/ir/diff.h): the mangled name, else
  // the demangled name, else that without parameters, else a trailing part of the qualified name
  // ("allocate", "detail::allocate"). Returns (func_id, tu source, mangled name) triples, ordered.
  struct FunctionId {
    std::int64_t func_id;
    std::string tu_source;
    std::string name;
  };
  Expected<std::vector<FunctionId>> FindFunctions(std::string_view query);

  // Which generation the build of `units` came from, and the capture each unit's hash names
  // (UnitMatch::captured_in: the capture `generation` sees, or, when no generation sees them
  // all, the latest capture with the hash). A store made before unit hashes knows no unit.
  // Where several TUs have a unit's hash (one source compiled twice alike), those whose source
  // path ends with the unit's source are preferred.
  Expected<BuildMatch> MatchBuild(const std::vector<UnitRef>& units);

  // Keeps the newest `keep` generations. The oldest kept generation takes over the captures it
  // inherited from removed ones, so every kept generation sees exactly what it saw before.
  // The open generation never takes captures over (a build still writing into it would split
  // across two generations): when it would be the oldest kept, the one before it is kept too.
  Expected<GcResult> Gc(int keep);

  // Total size of the database files (main file plus WAL).
  std::int64_t SizeBytes() const;

  class Impl;  // implementation detail (store.cc)

 private:
  Store(std::string path, std::unique_ptr<Impl> impl);

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmsb::ir
