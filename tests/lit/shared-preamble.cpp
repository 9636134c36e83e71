// The shared preamble (docs/PluginGuide.md, "The shared preamble"): the main file's leading
// system #includes are precompiled once and loaded by both passes. The object and the
// diagnostics must be those of parsing every header twice (-fplugin-arg-mmsb-no-preamble).
// RUN: rm -rf %t && mkdir -p %t
// RUN: %cxx -O2 -Wall -c %s -o %t/shared.o -fplugin-arg-mmsb-verbose 2> %t/shared.err
// RUN: FileCheck %s --check-prefix=USED < %t/shared.err
// RUN: %cxx -O2 -Wall -c %s -o %t/parsed.o -fplugin-arg-mmsb-no-preamble 2> %t/parsed.err
// RUN: cmp %t/shared.o %t/parsed.o
// RUN: grep -v '^mmsb: ' %t/shared.err > %t/shared.diags
// RUN: diff %t/shared.diags %t/parsed.err
// USED: mmsb: shared preamble: {{[0-9]+}} bytes of the main file
// USED: warning: unused variable 'unused'
// USED: mmsb: the second pass loaded the shared preamble
//
// At -O0 too.
// RUN: %cxx -O0 -c %s -o %t/shared0.o
// RUN: %cxx -O0 -c %s -o %t/parsed0.o -fplugin-arg-mmsb-no-preamble
// RUN: cmp %t/shared0.o %t/parsed0.o
//
// The e2e programs (real standard headers; their quoted includes end the preamble).
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/stores.cc -o %t/stores.shared.o
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/stores.cc -o %t/stores.parsed.o -fplugin-arg-mmsb-no-preamble
// RUN: cmp %t/stores.shared.o %t/stores.parsed.o
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/templates.cc -o %t/templates.shared.o
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/templates.cc -o %t/templates.parsed.o -fplugin-arg-mmsb-no-preamble
// RUN: cmp %t/templates.shared.o %t/templates.parsed.o
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/calls.cc -o %t/calls.shared.o -fplugin-arg-mmsb-Wno-mmsb-unrewritable
// RUN: %cxx -O2 -I%S/../e2e -I%mmsb_include -c %S/../e2e/calls.cc -o %t/calls.parsed.o -fplugin-arg-mmsb-Wno-mmsb-unrewritable -fplugin-arg-mmsb-no-preamble
// RUN: cmp %t/calls.shared.o %t/calls.parsed.o
//
// The preamble instantiates the templates its headers use (once, instead of in each pass). A TU
// that builds a preamble but is not rewritten is compiled by the second pass from the original
// files: its object and its diagnostics must be plain clang's.
// RUN: %cxx -O2 -Wall -c %inputs/preamble_unrewritten.cc -o %t/unrw.o -fplugin-arg-mmsb-verbose 2> %t/unrw.err
// RUN: FileCheck %s --check-prefix=UNRW < %t/unrw.err
// RUN: %cxx_plain -O2 -Wall -c %inputs/preamble_unrewritten.cc -o %t/unrw.plain.o 2> %t/unrw.plain.err
// RUN: cmp %t/unrw.o %t/unrw.plain.o
// RUN: grep -v '^mmsb: ' %t/unrw.err | diff - %t/unrw.plain.err
// RUN: %cxx -O0 -c %inputs/preamble_unrewritten.cc -o %t/unrw0.o
// RUN: %cxx_plain -O0 -c %inputs/preamble_unrewritten.cc -o %t/unrw0.plain.o
// RUN: cmp %t/unrw0.o %t/unrw0.plain.o
// UNRW: mmsb: shared preamble: {{[0-9]+}} bytes of the main file
// UNRW: warning: unused variable 'unused'
// UNRW: mmsb: compiling the original source
// UNRW: mmsb: the second pass loaded the shared preamble
//
// Where sharing could change the output, both passes parse every header, as before.
// RUN: %cxx -O2 -g -c %s -o %t/g.o -fplugin-arg-mmsb-verbose 2>&1 | FileCheck %s --check-prefix=DEBUG
// DEBUG: mmsb: no shared preamble: debug information
// RUN: %cxx -O2 -c %s -o %t/md.o -MD -MF %t/md.d -fplugin-arg-mmsb-verbose 2>&1 | FileCheck %s --check-prefix=DEPS
// DEPS: mmsb: no shared preamble: dependency or header-include output
//
// A system header with an error: the preamble is not used, and the error is reported once, as
// without it.
// RUN: not %cxx -isystem %inputs/broken_sys -include broken_sys.h -c %s -o %t/broken.o -fplugin-arg-mmsb-verbose 2> %t/broken.err
// RUN: FileCheck %s --check-prefix=BROKEN < %t/broken.err
// RUN: not %cxx -isystem %inputs/broken_sys -include broken_sys.h -c %s -o %t/broken.o -fplugin-arg-mmsb-no-preamble 2> %t/broken-parsed.err
// RUN: grep -v '^mmsb: ' %t/broken.err | diff - %t/broken-parsed.err
// BROKEN: mmsb: no shared preamble: the preamble's headers report diagnostics
// BROKEN: broken_sys.h:4:24: error: use of undeclared identifier 'undeclared_in_broken_sys'
// BROKEN-NOT: error:
#include <mini_std.h>
// A comment between the includes.
#include <cstdint>

struct [[mmsb::page]] Counters {
  std::uint64_t hits[8];
  double max;
};
[[mmsb::page]] Counters g_counters;

std::vector<int> Sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

void Record(int bucket, double x) {
  int unused = 0;
  g_counters.hits[bucket] += 1;
  g_counters.max = x > g_counters.max ? x : g_counters.max;
}
