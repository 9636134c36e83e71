#include "mmsb/status.h"

#include <cstdio>
#include <cstdlib>

#include "mmsb/types.h"

namespace mmsb {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kInvalidDelta:
      return "invalid_delta";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kCorruption:
      return "corruption";
    case StatusCode::kIO:
      return "io";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kGraphCycle:
      return "graph_cycle";
    case StatusCode::kOutOfMemory:
      return "out_of_memory";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s = StatusCodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

void AbortWithStatus(const Status& s, const char* what) {
  std::fprintf(stderr, "mmsb: fatal: %s: %s\n", what, s.ToString().c_str());
  std::abort();
}

namespace detail {
void CheckFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "mmsb: check failed at %s:%d: %s\n", file, line, cond);
  std::abort();
}
}  // namespace detail

const char* LocationName(Location loc) {
  switch (loc) {
    case Location::kCpu:
      return "cpu";
    case Location::kGpu:
      return "gpu";
    case Location::kUnified:
      return "unified";
  }
  return "unknown";
}

}  // namespace mmsb
