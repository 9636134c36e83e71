// Clang thread-safety analysis annotations (-Wthread-safety). No-ops on other compilers.
#pragma once

#if defined(__clang__)
#define MMSB_TSA(x) __attribute__((x))
#else
#define MMSB_TSA(x)
#endif

#define GUARDED_BY(x) MMSB_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) MMSB_TSA(pt_guarded_by(x))
#define REQUIRES(...) MMSB_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) MMSB_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) MMSB_TSA(acquired_before(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS MMSB_TSA(no_thread_safety_analysis)
#define CAPABILITY(x) MMSB_TSA(capability(x))
#define SCOPED_CAPABILITY MMSB_TSA(scoped_lockable)
#define ACQUIRE(...) MMSB_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) MMSB_TSA(release_capability(__VA_ARGS__))
