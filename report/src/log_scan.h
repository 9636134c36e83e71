// Pass 1 of `mmsb report LOG`: one pass over the log's records (LogReader) counts changed bytes
// per epoch and the leaf fields each delta touches, and collects pages, types, edges, commit
// sites and runs. Internal to mmsb_report. Thread-safety: none; one Scan per report.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/graph.h"
#include "mmsb/log.h"
#include "mmsb/type_desc.h"

namespace mmsb::report {

constexpr std::uint32_t kNoLeaf = ~std::uint32_t{0};

// "Particles.x[12]" -> "Particles.x[]": the row an array element belongs to.
std::string Collapse(std::string_view path);

// How `mmsb diff` names a field: "Particles.x[12]", "Particles[3].x" for a page of records.
std::string FieldName(const std::string& type_name, const std::string& path);

struct PageSlot {
  PageId id = kInvalidPageId;
  std::string name;
  std::string type_name;
  std::uint64_t size = 0;
  const TypeDescriptor* type = nullptr;  // resolved when the page or its type is logged
  std::uint64_t changes = 0;             // epochs in which it changed
  Epoch last_counted = ~Epoch{0};
  bool live = true;
};

struct Hit {
  std::uint32_t leaf;  // kNoLeaf: created or freed
  std::uint32_t page;  // slot
};

struct EpochRec {
  Epoch epoch = 0;
  std::uint64_t bytes = 0;
  std::uint32_t hit_end = 0;  // hits [previous hit_end, hit_end)
  std::uint32_t site = 0;     // Scan::sites index of what committed it; 0: unknown
};

// A place that commits (a site record), the same across runs when function, file and line are.
struct SiteRec {
  std::string label;  // "step(float) at particles.cc:42", as mmsb blame prints a site
  std::string kind;   // "transaction", "commit", "" (unknown)
  std::string function;
  std::string file;
  std::uint32_t line = 0;
  std::uint64_t epochs = 0;
  std::uint64_t bytes = 0;
};

struct Leaf {
  std::string full;  // "Particles.x[12]"
  std::string row;   // "Particles.x[]"
  std::uint64_t hits = 0;
};

struct CacheKey {
  const TypeDescriptor* type;
  std::uint64_t rec;
  std::uint32_t inner;
  bool operator==(const CacheKey&) const = default;
};
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    return std::hash<const void*>()(k.type) ^ (k.rec * 0x9E3779B97F4A7C15ull) ^
           (std::uint64_t{k.inner} << 17);
  }
};
struct Resolved {
  std::uint32_t leaf = kNoLeaf;
  std::uint64_t begin = 0;  // page offset of the leaf
  std::uint64_t end = 0;
};

// Pass 1: what changed when, from the records alone.
class Scan {
 public:
  using TypeMap = std::map<std::string, std::shared_ptr<const TypeDescriptor>, std::less<>>;

  Status Run(const std::string& path, RecoveryMode mode);

  std::vector<LogProblem> problems;  // salvage: the damage skipped
  std::vector<PageSlot> pages;
  std::unordered_map<PageId, std::uint32_t> slot_of;
  TypeMap types;
  std::map<std::pair<PageId, PageId>, EdgeInfo> edges;
  std::vector<Hit> hits;
  std::vector<EpochRec> epochs;
  std::vector<Leaf> leaves;
  std::vector<SiteRec> sites{SiteRec{"(no provenance in the log)", "", "", "", 0, 0, 0}};
  struct RunRec {
    Epoch epoch_base = 0;
    std::uint64_t unix_nanos = 0;
    std::string build_id;
    std::string executable;
  };
  std::vector<RunRec> runs;

 private:
  std::uint32_t SiteIndex(const LogSite& s);

  std::uint32_t Slot(PageId id);

  std::uint32_t LeafId(const std::string& full);

  const TypeDescriptor* Lookup(std::string_view name) const;

  // The leaf field holding byte `pos` of a page of `type` (null: untyped) and `size` bytes.
  Resolved Resolve(const PageSlot& p, const TypeDescriptor* type, std::uint64_t pos);

  void AddDelta(const Delta& d);

  void Commit(Epoch epoch);

  std::unordered_map<std::string, std::uint32_t> leaf_ids_;
  std::unordered_map<CacheKey, Resolved, CacheKeyHash> cache_;
  std::vector<Hit> pending_;
  std::uint64_t pending_bytes_ = 0;
  std::uint32_t pending_site_ = 0;
  std::unordered_map<std::uint32_t, std::uint32_t> run_sites_;  // this run's site id -> sites
  std::unordered_map<std::string, std::uint32_t> site_ids_;
};

}  // namespace mmsb::report
