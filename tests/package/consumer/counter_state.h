// A page type in a header that the consumer precompiles (target_precompile_headers): the PCH is
// built with the plugin, and each TU that loads it also includes this header.
#pragma once
#include <cstdint>

struct [[mmsb::page]] Tally {
  std::uint64_t counts[8];
  std::uint64_t total;
};
