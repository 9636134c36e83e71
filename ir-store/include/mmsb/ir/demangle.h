// Names for people: Itanium demangling without LLVM (the C++ runtime's __cxa_demangle).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace mmsb::ir {

// The demangled form of a symbol name, or the name itself when it is not a mangled C++ name.
std::string Demangle(std::string_view mangled);

// A demangled name without its trailing parameter list and qualifiers:
// "ns::F(int) const" -> "ns::F", "A(int)::$_0::operator()(int) const" -> "A(int)::$_0::operator()".
std::string WithoutParameters(std::string_view demangled);

}  // namespace mmsb::ir
