// The IR store's word on each commit site of a log report (LogReportOptions::ir_store): which
// generation the run's code was, and per site the function's instruction count, whether its IR
// changed from the generation before, and the generations in which it changed. Internal to
// mmsb_report.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmsb/report/report.h"
#include "mmsb/status.h"

#include "log_scan.h"

namespace mmsb::report {

// The page's `ir` object for `sites`, from the generation the run used (LogReportOptions::
// ir_generation, else the newest one opened before `run_start_nanos`).
Expected<nlohmann::json> LookUpSites(const std::vector<SiteRec>& sites,
                                     std::uint64_t run_start_nanos, const LogReportOptions& o,
                                     LogReportStats* stats);

}  // namespace mmsb::report
