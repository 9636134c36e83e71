// The data one compile captures: per defined function and stage, the normalised IR and the
// facts the store, the diff and the CLI use. Plain values, no LLVM: the capture (LLVM side)
// fills them, the store (SQLite side) persists them. See docs/IRStore.md.
//
// Thread-safety: value types; the usual rules for copying and sharing apply.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmsb::ir {

// Where in the optimisation pipeline a function was captured.
enum class Stage : std::uint8_t {
  kPre = 0,   // pipeline start: the IR clang generated, before any optimisation
  kPost = 1,  // optimizer last: after the whole middle end (inlining included)
};

// "pre" or "post".
const char* StageName(Stage stage);
// Parses "pre" or "post".
std::optional<Stage> ParseStage(std::string_view name);

// A content address: XXH3-128 of the normalised text.
using TextHash = std::array<std::uint8_t, 16>;

TextHash HashText(std::string_view text);
std::string HexOf(const TextHash& hash);

// One function at one stage.
struct FunctionRecord {
  std::string name;  // the mangled (symbol) name: the function's identity within its TU
  Stage stage = Stage::kPre;
  std::string text;                   // normalised IR (docs/IRStore.md, "Normalisation")
  std::uint64_t structural_hash = 0;  // llvm::StructuralHash(F, /*DetailedHash=*/true)
  std::uint32_t instructions = 0;     // debug intrinsics excluded
  std::uint32_t blocks = 0;
  std::string linkage;                  // "external", "internal", "linkonce_odr", ...
  std::string file;                     // source file of the definition ("" when unknown)
  std::uint32_t line = 0;               // 0 when unknown
  std::vector<std::string> page_types;  // [[mmsb::page]] types it writes, sorted, unique
};

// Everything one compile of one translation unit captured.
struct TuCapture {
  std::string source;      // absolute path of the main source file
  std::string output;      // absolute path of the compile's output ("" for stdout or none)
  std::string compiler;    // full compiler version
  std::string flags_hash;  // hex hash of the compile flags, paths of this TU left out
  // The TU's content hash (CaptureSession::unit_hash), the one its object's unit note carries
  // (docs/SerializationSpec.md, "Unit notes"); 0 when unknown.
  std::uint64_t unit_hash = 0;
  std::vector<FunctionRecord> functions;
};

}  // namespace mmsb::ir
