// Page state in a header that the pch_replay scenario precompiles through CMake's
// target_precompile_headers: CMake's wrapper (cmake_pch.hxx) includes it under
// "#pragma clang system_header", and the page type, the static page's type and the store in
// Open() must still be instrumented (issue 15).
#pragma once
#include <cstdint>

struct [[mmsb::page]] Ledger {
  std::uint32_t id;
  std::uint32_t open;
  std::int64_t balance[6];
  std::uint64_t posted;
  unsigned char memo[40];
};

// A store compiled only into the PCH.
inline void Open(Ledger& l, std::uint32_t id) {
  l.id = id;
  l.open = 1;
}
