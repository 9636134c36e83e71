// Restore: starting a program from the state a log recorded, by copying the static pages of an
// epoch into the program's registered static pages of the same names (see RestoreStaticPages).
//
// Ownership: reports are values. Thread-safety: call at start-up, before writer threads run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmsb/replayer.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

// ---- Restore -----------------------------------------------------------------------------------

struct RestoreOptions {
  Epoch epoch = kLatestEpoch;
  RecoveryMode mode = RecoveryMode::kStrict;
  Env* env = nullptr;
};

struct RestoreReport {
  Epoch epoch = 0;                          // the epoch restored from
  std::vector<std::string> restored;        // page names whose bytes were restored
  std::vector<std::string> not_in_log;      // registered static pages the log does not have
  std::vector<std::string> not_registered;  // static pages in the log with no registered page
  std::vector<std::string> mismatched;      // same name, different size or type: left alone
  // Restored into a changed layout by field name: "g_cfg (Config: moved b; added c; removed d)".
  // Each is also in `restored`.
  std::vector<std::string> migrated;
};

// Copies the bytes of every static page recorded in `path` (log directory or checkpoint) at the
// given epoch into the registered static page of the same name, through the write barrier, so
// the next commit logs them. Call at start-up, after the static pages are registered and before
// writers run.
//
// When the log and the program both have the page's type descriptor, the full layouts are
// compared (size, and every field's name, offset, element type and extents, nested records
// included). The same layout is copied whole. A changed layout is migrated by field name: a
// field of the same name and shape is copied to its new offset, a new field keeps the program's
// value, a field the program dropped is dropped (`migrated` says which). A field whose shape
// changed (u32 -> f32, [4] -> [8]) cannot be migrated: the page is left alone and `mismatched`
// names the fields. Without descriptors only the size and type name are compared.
Expected<RestoreReport> RestoreStaticPages(const std::string& path,
                                           const RestoreOptions& options = {});

}  // namespace mmsb
