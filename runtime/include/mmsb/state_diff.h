// State diff: what changed between two replayed states, page by page and field by field
// (`Particles.x[12]: 1.0 -> 1.5`), as `mmsb diff` prints it.
//
// Ownership: a StateDiff is a value. Thread-safety: the functions share no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/replayer.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

// ---- State diff --------------------------------------------------------------------------------

struct FieldChange {
  std::string path;  // "x[12]" or "pos.y", without the type name
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  ScalarKind kind = ScalarKind::kBytes;
  std::string old_value;  // FormatScalar of the bytes at `from`
  std::string new_value;
};

struct PageDiff {
  enum class Kind : std::uint8_t { kChanged = 0, kAdded = 1, kRemoved = 2 };
  Kind kind = Kind::kChanged;
  PageId id = kInvalidPageId;
  std::string name;
  std::string type_name;
  std::uint64_t size = 0;
  std::vector<ByteRun> runs;  // changed bytes (added: non-zero bytes; removed: none)
  std::uint64_t changed_bytes = 0;
  std::vector<FieldChange> fields;  // when the type is known
  bool fields_truncated = false;    // more field changes than DiffOptions::max_fields
};
const char* PageDiffKindName(PageDiff::Kind k);

struct StateDiff {
  Epoch from = 0;
  Epoch to = 0;
  std::vector<PageDiff> pages;  // by page id; unchanged pages are omitted
  std::vector<EdgeInfo> edges_added;
  std::vector<EdgeInfo> edges_removed;
};

struct DiffOptions {
  std::optional<PageId> page;      // only this page
  std::string type_name;           // only pages of this type
  std::size_t max_fields = 10000;  // per page
};

StateDiff DiffStates(const LogState& from, const LogState& to, const DiffOptions& options = {});
// Replays to `from`, continues to `to`, and diffs. `replay.epoch` is ignored. `report`, when not
// null, receives what the replay found (in salvage mode: the damaged epochs it skipped).
// NotFound when a filter names nothing: a page in neither state, a type no page has.
Expected<StateDiff> DiffEpochs(const std::string& path, Epoch from, Epoch to,
                               const DiffOptions& options = {}, const ReplayOptions& replay = {},
                               ReplayReport* report = nullptr);

// ---- JSON (stable keys; see docs/SerializationSpec.md, "CLI JSON") -----------------------------

std::string StateDiffToJson(const StateDiff& diff);

}  // namespace mmsb
