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

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kPageNotFound,
  kInvalidDelta,
  kInvalidArgument,
  kSerialization,
  kCorruption,
  kIO,
  kUnsupportedLocation,
  kGpuMemory,
  kGraphCycle,
  kOutOfMemory,
  kFailedPrecondition,
  kAlreadyExists,
  kNotFound,
  kInternal,
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
inline Status PageNotFound(std::string m) { return {StatusCode::kPageNotFound, std::move(m)}; }
inline Status InvalidDelta(std::string m) { return {StatusCode::kInvalidDelta, std::move(m)}; }
inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status SerializationError(std::string m) {
  return {StatusCode::kSerialization, std::move(m)};
}
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status IOError(std::string m) { return {StatusCode::kIO, std::move(m)}; }
inline Status UnsupportedLocation(std::string m) {
  return {StatusCode::kUnsupportedLocation, std::move(m)};
}
inline Status GpuMemory(std::string m) { return {StatusCode::kGpuMemory, std::move(m)}; }
inline Status GraphCycle(std::string m) { return {StatusCode::kGraphCycle, std::move(m)}; }
inline Status OutOfMemory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

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

namespace mmsb::detail {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}  // namespace mmsb::detail
