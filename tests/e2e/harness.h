// The end-to-end harness shared by every scenario.
//
// A scenario is a program that writes page state in one particular way and ends epochs. It is
// built twice from the same source:
//   - instrumented: compiled with the MMSB plugin and linked with libmmsb and
//     harness_instrumented.cc. EndEpoch() is mmsb::commit(); an in-process CommitSink records
//     every committed delta.
//   - plain: compiled by clang 19 without the plugin (MMSB_E2E_PLAIN defined) and linked with
//     harness_plain.cc only. EndEpoch() diffs a snapshot of every tracked object against its
//     previous snapshot: the ground truth, computed without the runtime or the rewriter.
// Finish() prints the same trace format in both builds ("commit N", then one line per changed
// byte run of each page); the test passes when the traces are identical. The instrumented build
// also fails on any verify-mode miss, on a page whose escaped state is not the one the scenario
// expects, and on a layout descriptor that disagrees with the compiler's layout.
//
// Not thread-safe: scenarios are single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace e2e {

// `addr` is a page (a static page variable, or an object of page type from `new`): its changes
// are traced under `name`. Track each page once, right after it exists.
void Track(const char* name, const void* addr, std::size_t size);
template <class T>
void Track(const char* name, const T* obj) {
  Track(name, obj, sizeof(T));
}
// The page at `addr` is about to be freed.
void Untrack(const void* addr);

// Ends the epoch: every change since the previous one becomes part of the trace.
void EndEpoch();

// At Finish(): the page at `addr` must (not) be marked escaped. Pages without an expectation
// must not be escaped, so that verify mode checks their tracked path.
void ExpectEscaped(const void* addr);
// At Finish(): the page at `addr` is a static page registered under `name` (its mangled name).
void ExpectPageName(const void* addr, const char* name);
// At Finish(): the registered layout of `type` has this field.
void ExpectField(const char* type, const char* field, std::size_t offset, std::size_t size,
                 const char* kind, std::initializer_list<std::uint32_t> extents = {},
                 const char* record_type = "");

// Prints the trace to stdout and returns the process exit status.
int Finish();

// Ends the epoch when the outermost scope on this thread exits, as the plugin's
// TransactionScope does for a [[mmsb::transaction]] function. Only the plain build uses it.
class PlainTransaction {
 public:
  PlainTransaction();
  ~PlainTransaction();
  PlainTransaction(const PlainTransaction&) = delete;
  PlainTransaction& operator=(const PlainTransaction&) = delete;
};

}  // namespace e2e

// First statement of every [[mmsb::transaction]] function in a scenario: in the plain build it
// stands in for the commit the plugin adds.
#ifdef MMSB_E2E_PLAIN
#define E2E_TRANSACTION() ::e2e::PlainTransaction e2e_transaction_
#else
#define E2E_TRANSACTION() static_cast<void>(0)
#endif
