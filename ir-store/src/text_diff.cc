// UnifiedDiff, the only user of dtl. Compiled on its own because dtl 1.20's Diff.hpp has a
// const member function that assigns a member (enableTrivial), which clang rejects unless
// template bodies are parsed only when instantiated (see CMakeLists.txt).
#include <string>
#include <string_view>
#include <vector>

#include <dtl/dtl.hpp>

#include "mmsb/ir/diff.h"

namespace mmsb::ir {

namespace {

std::vector<std::string> SplitLines(std::string_view s) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < s.size()) {
    size_t end = s.find('\n', begin);
    if (end == std::string_view::npos) end = s.size();
    lines.emplace_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

void AppendRange(std::string& out, char prefix, const std::vector<std::string>& lines) {
  for (const std::string& l : lines) {
    out += prefix;
    out += l;
    out += '\n';
  }
}

}  // namespace

std::string UnifiedDiff(std::string_view a, std::string_view b) {
  if (a == b) return {};
  const std::vector<std::string> la = SplitLines(a);
  const std::vector<std::string> lb = SplitLines(b);
  std::string out;
  if (la.empty() || lb.empty()) {
    // dtl numbers the hunk of a wholly added or removed text from 1; unified format says 0.
    out += "@@ -" + std::string(la.empty() ? "0,0" : "1," + std::to_string(la.size())) + " +" +
           (lb.empty() ? "0,0" : "1," + std::to_string(lb.size())) + " @@\n";
    AppendRange(out, '-', la);
    AppendRange(out, '+', lb);
    return out;
  }
  dtl::Diff<std::string, std::vector<std::string>> diff(la, lb);
  diff.onHuge();
  diff.compose();
  diff.composeUnifiedHunks();
  for (const auto& hunk : diff.getUniHunks()) {
    out += "@@ -" + std::to_string(hunk.a) + "," + std::to_string(hunk.b) + " +" +
           std::to_string(hunk.c) + "," + std::to_string(hunk.d) + " @@\n";
    auto emit = [&](const auto& elems) {
      for (const auto& e : elems) {
        switch (e.second.type) {
          case dtl::SES_ADD:
            out += '+';
            break;
          case dtl::SES_DELETE:
            out += '-';
            break;
          default:
            out += ' ';
            break;
        }
        out += e.first;
        out += '\n';
      }
    };
    emit(hunk.common[0]);
    emit(hunk.change);
    emit(hunk.common[1]);
  }
  return out;
}

}  // namespace mmsb::ir
