#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "mmsb/ir/store.h"

namespace mmsb::ir {

namespace fs = std::filesystem;

namespace {

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

}  // namespace

std::string ResolveStorePath(const std::string& start_dir, const std::string& fallback_dir) {
  if (const char* env = std::getenv(kStoreEnv); env != nullptr && env[0] != '\0') {
    fs::path p(env);
    std::error_code ec;
    if (fs::is_directory(p, ec)) p /= "ir.db";
    return p.lexically_normal().string();
  }
  std::error_code ec;
  fs::path start =
      fs::absolute(fs::path(start_dir.empty() ? "." : start_dir), ec).lexically_normal();
  // The nearest directory that has a store or is a CMake build root: a build tree nested in
  // another (a test project inside a build directory) gets its own store.
  for (fs::path d = start;; d = d.parent_path()) {
    if (Exists(d / ".mmsb" / "ir.db") || Exists(d / "CMakeCache.txt"))
      return (d / ".mmsb" / "ir.db").string();
    if (d == d.parent_path()) break;
  }
  fs::path fb = fs::absolute(fs::path(fallback_dir.empty() ? "." : fallback_dir), ec);
  return (fb.lexically_normal() / ".mmsb" / "ir.db").string();
}

}  // namespace mmsb::ir
