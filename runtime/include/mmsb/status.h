// Status and Expected<T>: the error currency of every MMSB library boundary.
//
// A Status is either OK or carries a typed code plus a human-readable message. Expected<T> holds
// either a T or a non-OK Status. Neither throws; no exception crosses into instrumented user code.
//
// Thread-safety: const methods may be called from many threads without synchronisation; a
// non-const method on one object needs external synchronisation (as for any value type).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mmsb {

// One code per kind of failure a caller can act on differently. Codes that used to overlap were
// merged: a missing page is kNotFound, GPU memory exhaustion is kOutOfMemory, undecodable bytes are
// kCorruption, and a location or format this build cannot handle is kUnsupported. The old names
// stay as deprecated aliases so existing callers compile; the numeric values are not serialised.
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kNotFound,
  kInvalidDelta,
  kInvalidArgument,
  kCorruption,
  kIO,
  kUnsupported,
  kGraphCycle,
  kOutOfMemory,
  kFailedPrecondition,
  kAlreadyExists,
  kInternal,

  kPageNotFound [[deprecated("use kNotFound")]] = kNotFound,
  kGpuMemory [[deprecated("use kOutOfMemory")]] = kOutOfMemory,
  kSerialization [[deprecated("use kCorruption")]] = kCorruption,
  kUnsupportedLocation [[deprecated("use kUnsupported")]] = kUnsupported,
};

// Stable lower-case name of a code, e.g. "corruption". Never null.
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsInvalidDelta() const { return code_ == StatusCode::kInvalidDelta; }
  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsCorruption() const { return code_ == StatusCode::kCorruption; }
  bool IsIOError() const { return code_ == StatusCode::kIO; }
  bool IsUnsupported() const { return code_ == StatusCode::kUnsupported; }
  bool IsGraphCycle() const { return code_ == StatusCode::kGraphCycle; }
  bool IsOutOfMemory() const { return code_ == StatusCode::kOutOfMemory; }
  bool IsFailedPrecondition() const { return code_ == StatusCode::kFailedPrecondition; }
  bool IsAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }
  bool IsInternal() const { return code_ == StatusCode::kInternal; }
  const std::string& message() const { return message_; }

  // "corruption: record checksum mismatch at run.tlog:4096" or "ok".
  std::string ToString() const;

  // Returns a copy with `context` prepended to the message ("reading x.tlog: ...").
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Convenience constructors, one per code.
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status InvalidDelta(std::string m) { return {StatusCode::kInvalidDelta, std::move(m)}; }
inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status IOError(std::string m) { return {StatusCode::kIO, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status GraphCycle(std::string m) { return {StatusCode::kGraphCycle, std::move(m)}; }
inline Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// The constructors of the merged codes, kept for existing callers.
[[deprecated("use NotFound")]] inline Status PageNotFound(std::string m) {
  return NotFound(std::move(m));
}
[[deprecated("use OutOfMemory")]] inline Status GpuMemory(std::string m) {
  return OutOfMemory(std::move(m));
}
[[deprecated("use Corruption")]] inline Status SerializationError(std::string m) {
  return Corruption(std::move(m));
}
[[deprecated("use Unsupported")]] inline Status UnsupportedLocation(std::string m) {
  return Unsupported(std::move(m));
}

// Either a value or an error. Accessing value() of an error aborts with the error's message
// (a broken invariant in the caller, not a recoverable condition).
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Expected(Status error) : v_(std::move(error)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok())
      v_ = Status(StatusCode::kInternal, "Expected built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & {
    CheckOk();
    return std::get<T>(v_);
  }
  const T& value() const& {
    CheckOk();
    return std::get<T>(v_);
  }
  T&& value() && {
    CheckOk();
    return std::get<T>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // OK if this holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  void CheckOk() const;
  std::variant<T, Status> v_;
};

[[noreturn]] void AbortWithStatus(const Status& s, const char* what);

template <class T>
void Expected<T>::CheckOk() const {
  if (!ok()) AbortWithStatus(std::get<Status>(v_), "Expected::value() on an error");
}

}  // namespace mmsb

// Broken invariants abort with a message; they are not recoverable errors.
#define MMSB_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) ::mmsb::detail::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

#define MMSB_RETURN_IF_ERROR(expr)     \
  do {                                 \
    ::mmsb::Status _mmsb_s = (expr);   \
    if (!_mmsb_s.ok()) return _mmsb_s; \
  } while (0)

// `MMSB_ASSIGN_OR_RETURN(auto x, ReturnsExpected());` declares (or assigns) `x` from the value, or
// returns the error from the enclosing function (which returns Status or Expected<U>).
#define MMSB_ASSIGN_OR_RETURN(lhs, expr) \
  MMSB_ASSIGN_OR_RETURN_IMPL(MMSB_STATUS_CONCAT(_mmsb_expected_, __LINE__), lhs, expr)
#define MMSB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
#define MMSB_STATUS_CONCAT(a, b) MMSB_STATUS_CONCAT_INNER(a, b)
#define MMSB_STATUS_CONCAT_INNER(a, b) a##b

namespace mmsb::detail {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}  // namespace mmsb::detail
