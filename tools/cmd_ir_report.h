// `mmsb ir gate` and `mmsb ir report` (cmd_ir_report.cc), added under `mmsb ir` by cmd_ir.cc.
#pragma once

#include <CLI/CLI.hpp>

namespace mmsb::cli {

void AddIrReportCommands(CLI::App* ir);

}  // namespace mmsb::cli
