#include "mmsb/ir/demangle.h"

#include <cxxabi.h>

#include <cstdlib>

namespace mmsb::ir {

std::string Demangle(std::string_view mangled) {
  if (mangled.size() < 2 || mangled.substr(0, 2) != "_Z") return std::string(mangled);
  std::string name(mangled);
  int status = 0;
  char* out = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) {
    std::free(out);
    return name;
  }
  std::string result(out);
  std::free(out);
  return result;
}

std::string WithoutParameters(std::string_view d) {
  // Find the ')' that closes the last parameter list, skipping trailing qualifiers
  // (" const", " &", " &&", " volatile") and ABI tags.
  size_t end = d.find_last_of(')');
  if (end == std::string_view::npos) return std::string(d);
  int depth = 0;
  for (size_t i = end + 1; i-- > 0;) {
    const char c = d[i];
    if (c == ')') {
      ++depth;
    } else if (c == '(') {
      if (--depth == 0) return std::string(d.substr(0, i));
    }
  }
  return std::string(d);
}

}  // namespace mmsb::ir
