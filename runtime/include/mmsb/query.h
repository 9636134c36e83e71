// Asking the log: field history, blame, bisect, touched and slice, answered from an index kept
// beside the log segments instead of by replaying the log from its start.
//
// The index (LogIndex) maps (page, byte range) to the epochs whose deltas wrote it, with each
// delta's place in its segment, and keeps the log's page, type, edge and commit metadata
// (provenance included, see docs/SerializationSpec.md, "Provenance"). It lives in the log
// directory as `query.idx` (readers of the log ignore the name), is built on the first query,
// extended when the log has grown, and rebuilt from scratch whenever a segment it covers changed
// or disappeared (see docs/Debugging.md, "The index"). It is a cache: a damaged or stale index
// file is never trusted, only rebuilt.
//
// A query reads only the index and the delta records the index points at: a field's value at an
// epoch is rebuilt from the deltas that wrote its bytes (pages start as zeros, or from the
// checkpoint the log's first segment starts at). Pages the log recomputes on replay
// (DerivedPolicy::kRecomputeOnReplay) have no deltas for their derived changes; queries on them
// fail with FailedPrecondition rather than answer wrongly.
//
// Ownership: a LogIndex owns its open segment files. Thread-safety: none; one LogIndex per
// thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmsb/log.h"
#include "mmsb/replay.h"
#include "mmsb/status.h"
#include "mmsb/type_desc.h"
#include "mmsb/types.h"

namespace mmsb::query {

struct IndexOptions {
  // Where the index file lives; empty: `<log dir>/query.idx`.
  std::string index_path;
  // Write the built or extended index back (a read-only log directory is not an error: the index
  // then lives in memory only).
  bool save = true;
  Env* env = nullptr;  // null: Env::Default()
};

// What a commit record's provenance says committed it (docs/SerializationSpec.md, "Provenance").
struct TransactionSite {
  enum class Kind : std::uint8_t { kUnknown = 0, kTransaction = 1, kCommitCall = 2 };
  Kind kind = Kind::kUnknown;
  std::string function;  // demangled `[[mmsb::transaction]]` function, or the caller of commit()
  std::string file;
  std::uint32_t line = 0;
  std::string ToString() const;  // "step(float) at particles.cc:42"; "(unknown)" without
};
struct TransactionRef {
  TransactionSite site;
  std::uint32_t thread = 0;    // the run's thread number (1, 2, ... in order of first commit)
  std::uint64_t sequence = 0;  // the run's transaction sequence number
};
struct CommitInfo {
  Epoch epoch = 0;
  std::uint64_t unix_nanos = 0;
  std::vector<TransactionRef> transactions;  // empty in logs without provenance
};
// The build a run was made from (the run-start's build record).
struct BuildInfo {
  Epoch epoch_base = 0;  // the run's first epoch - 1
  std::string build_id;  // the executable's GNU build id, hex; empty when unknown
  std::string executable;
  // Its translation units' content hashes (the objects' unit notes), which the IR store maps to
  // generations (ir::Store::MatchBuild); empty in logs written before them.
  std::vector<LogBuild::Unit> units;
};

struct IndexedPage {
  PageId id = kInvalidPageId;
  std::string name;
  std::string type_name;
  std::uint64_t size = 0;
  Epoch created = 0;  // the epoch of its page-create record (0: it came from the base checkpoint)
  Epoch freed = 0;    // 0 while live
  bool recomputed_on_replay = false;           // some of its changes are not deltas (see above)
  std::shared_ptr<const TypeDescriptor> type;  // as of its creation; null for raw bytes
};

// One delta record of a page: its epoch, which 1/64ths of the page it wrote, and where it is.
struct IndexedChange {
  Epoch epoch = 0;
  std::uint64_t mask = 0;   // bit b: the delta wrote bytes in bucket b (IndexedPageBuckets)
  std::uint64_t where = 0;  // segment index << 40 | record offset
};

class LogIndex {
 public:
  // Opens the index of the log directory `dir`: loads `query.idx` when it matches the log,
  // extends it when the log has grown, builds it otherwise. Errors: NotFound for a path that is
  // not a log directory (not a directory, or one with no segment, checkpoint or LOCK), before
  // anything is written into it; the log's own (damage is reported as the log reader would; the
  // index needs an undamaged log).
  static Expected<std::unique_ptr<LogIndex>> Open(const std::string& dir,
                                                  const IndexOptions& options = {});
  ~LogIndex();

  const std::string& dir() const;
  Epoch first_epoch() const;          // the epoch the log starts from (its first segment's base)
  Epoch last_epoch() const;           // the last committed epoch indexed
  std::uint64_t log_bytes() const;    // bytes of the segments indexed
  std::uint64_t index_bytes() const;  // bytes of the index file (as written or loaded)
  enum class How : std::uint8_t { kLoaded, kExtended, kBuilt };
  How how() const;
  // Why an existing index file was not used (damaged, another version, the log changed), or a
  // block of it that failed its check during a query, after which the index rebuilt itself from
  // the log; empty when nothing was wrong. Tools print it as a notice.
  const std::string& note() const;
  // Ok unless a block of the index file failed its check and rebuilding from the log failed too
  // (the queries then fail with it rather than answer from an index that is not trusted).
  Status damage() const;

  const std::vector<IndexedPage>& pages() const;  // by id
  const IndexedPage* FindPage(PageId id) const;
  std::shared_ptr<const TypeDescriptor> FindType(std::string_view name) const;
  // The page's delta records in log order.
  std::span<const IndexedChange> ChangesOf(PageId id) const;
  // Bucket b of a page of `size` bytes covers [b << shift, (b + 1) << shift).
  static unsigned BucketShift(std::uint64_t size);
  static std::uint64_t BucketMask(std::uint64_t size, std::uint64_t offset, std::uint64_t length);

  // The commit of `epoch`, with its provenance (NotFound outside the log).
  Expected<CommitInfo> Commit(Epoch epoch) const;
  // Graph edges as of `epoch` (added and not removed at or before it).
  std::vector<EdgeInfo> EdgesAt(Epoch epoch) const;
  // The build of the run that committed `epoch` (empty fields when the log does not say).
  BuildInfo BuildAt(Epoch epoch) const;

  // Applies the delta behind `change` to `page_bytes` (the page's size); `runs`, when not null,
  // receives the runs it wrote. Corruption when the record no longer verifies.
  Status ApplyChange(const IndexedChange& change, std::span<std::uint8_t> page_bytes,
                     std::vector<ByteRun>* runs = nullptr) const;
  // The page's bytes at the log's first epoch (zeros unless it came from the base checkpoint).
  Status BaseImage(PageId id, std::span<std::uint8_t> out) const;

  class Impl;

 private:
  explicit LogIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- Fields -------------------------------------------------------------------------------------

// One scalar leaf of one page, named as `mmsb diff` prints it.
struct FieldRef {
  PageId page = kInvalidPageId;
  std::string label;  // "Counters.hits[1]" (type name, or page name for raw pages, plus path)
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  ScalarKind kind = ScalarKind::kBytes;
};

// Resolves a FIELD argument: `PREFIX[.path]` where PREFIX is a page name or a type name (every
// page of that type), and path is a field path as `mmsb diff` prints it (`hits[1]`, `pos[2].y`,
// `[3].x` for a page holding several records), `*` standing for any index (`x[*]`). A prefix
// alone, or a path that stops at a struct or array, names every leaf under it. InvalidArgument
// when nothing matches (with what does exist), FailedPrecondition for replay-recomputed pages.
Expected<std::vector<FieldRef>> ResolveFields(const LogIndex& index, std::string_view pattern);

// ---- history / blame / touched ------------------------------------------------------------------

struct FieldChangeAt {
  Epoch epoch = 0;
  FieldRef field;
  std::string old_value;  // FormatScalar, as mmsb diff prints it
  std::string new_value;
};

struct HistoryOptions {
  Epoch from = 0;  // changes in epochs (from, to]; from 0: since the beginning
  Epoch to = kLatestEpoch;
  std::size_t max_changes = 1000000;
};
struct History {
  std::vector<FieldRef> fields;
  std::vector<FieldChangeAt> changes;  // by epoch, then field order
  bool truncated = false;
};
Expected<History> FieldHistory(const LogIndex& index, std::string_view pattern,
                               const HistoryOptions& options = {});

// The values of `fields` at `epoch` (after its commit), FormatScalar'd; pages that do not exist
// then give "".
Expected<std::vector<std::string>> ValuesAt(const LogIndex& index, std::span<const FieldRef> fields,
                                            Epoch epoch);

struct Blame {
  FieldChangeAt change;                 // the last change at or before `at`
  CommitInfo commit;                    // of that epoch
  std::vector<FieldChangeAt> together;  // the epoch's other field changes (leaves, capped)
  std::vector<PageId> derived;          // pages changed in that epoch downstream of the field's
  bool together_truncated = false;
};
// NotFound when the field never changed at or before `at`.
Expected<Blame> BlameField(const LogIndex& index, std::string_view pattern, Epoch at,
                           std::size_t max_together = 200);

struct TouchedSite {
  std::string site;  // TransactionSite::ToString()
  std::uint64_t epochs = 0;
  Epoch first = 0;
  Epoch last = 0;
};
struct Touched {
  std::uint64_t epochs = 0;        // epochs in which the path changed
  std::vector<TouchedSite> sites;  // most epochs first
};
Expected<Touched> TouchedBy(const LogIndex& index, std::string_view pattern, Epoch from, Epoch to);

// ---- bisect -------------------------------------------------------------------------------------

// A predicate over typed scalar fields: comparisons (== != < <= > >=), && || !, + - * / %, unary
// minus, parentheses, numbers (integer, decimal, 0x hex), true/false, and FIELD references as
// ResolveFields takes them (each must name exactly one leaf).
class Predicate {
 public:
  static Expected<Predicate> Parse(const LogIndex& index, std::string_view text);
  const std::vector<FieldRef>& fields() const { return fields_; }
  // Evaluates with the fields' current bytes (values[i] holds fields()[i]'s bytes).
  bool Eval(std::span<const std::vector<std::uint8_t>> values) const;
  struct Node;

 private:
  std::vector<FieldRef> fields_;
  std::shared_ptr<const Node> root_;
};

struct BisectOptions {
  Epoch from = 0;  // search epochs in [max(from, first epoch + 1), to]
  Epoch to = kLatestEpoch;
  bool monotone = false;  // binary search; only valid if the predicate stays true once true
};
struct BisectResult {
  bool found = false;
  Epoch epoch = 0;                     // the first epoch where it holds
  std::vector<FieldChangeAt> changes;  // the predicate's fields that changed at that epoch
  std::vector<std::string> values;     // the fields' values at that epoch
  std::uint64_t epochs_evaluated = 0;  // predicate evaluations (the index skips the rest)
};
Expected<BisectResult> Bisect(const LogIndex& index, const Predicate& predicate,
                              const BisectOptions& options = {});

// ---- slice --------------------------------------------------------------------------------------

// Writes a self-contained log of epochs [from, to] of `log_dir` to `out_dir` (which must not
// hold a log): a checkpoint of the state at `from`, then the groups of epochs from + 1 .. to,
// byte for byte the same records under the new log's id. Replaying it to any epoch in
// [from, to] gives the state the original gives (LogState::Hash equal).
struct SliceReport {
  Epoch from = 0;
  Epoch to = 0;
  std::uint64_t groups = 0;
  std::uint64_t records = 0;
  std::uint64_t bytes = 0;  // segment plus checkpoint bytes written
  std::string checkpoint;
};
Expected<SliceReport> Slice(const std::string& log_dir, Epoch from, Epoch to,
                            const std::string& out_dir);

}  // namespace mmsb::query
