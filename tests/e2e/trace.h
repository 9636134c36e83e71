// The trace format shared by both harness builds (see harness.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace e2e {

// The changed bytes of one page in one commit: maximal runs of changed bytes, in offset order.
struct PageChange {
  std::vector<std::pair<std::uint32_t, std::vector<std::uint8_t>>> runs;  // offset, new bytes
};

struct CommitTrace {
  std::map<std::string, PageChange> changes;  // by page name
  std::vector<std::string> freed;
};

// Maximal runs of bytes where `before` and `after` differ.
inline PageChange DiffBytes(const std::uint8_t* before, const std::uint8_t* after, std::size_t n) {
  PageChange c;
  for (std::size_t i = 0; i < n;) {
    if (before[i] == after[i]) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < n && before[j] != after[j]) ++j;
    c.runs.emplace_back(static_cast<std::uint32_t>(i),
                        std::vector<std::uint8_t>(after + i, after + j));
    i = j;
  }
  return c;
}

inline void PrintTrace(const std::vector<CommitTrace>& commits) {
  for (std::size_t k = 0; k < commits.size(); ++k) {
    std::printf("commit %zu\n", k + 1);
    for (const auto& [name, change] : commits[k].changes) {
      for (const auto& [offset, bytes] : change.runs) {
        std::printf("  %s +%u:", name.c_str(), offset);
        for (std::uint8_t b : bytes) std::printf(" %02x", b);
        std::printf("\n");
      }
    }
    for (const std::string& name : commits[k].freed) std::printf("  %s freed\n", name.c_str());
  }
}

}  // namespace e2e
