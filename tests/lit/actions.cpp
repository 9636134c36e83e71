// The plugin compiles with the action the command line asked for, writing the outputs it names.
// RUN: rm -rf %t && mkdir -p %t
// RUN: %cxx -c %s -o %t/a.o -MD -MF %t/a.d
// RUN: llvm-nm-19 %t/a.o | FileCheck %s --check-prefix=OBJ
// OBJ-DAG: _mmsb_reg_g
// OBJ-DAG: _Z4Bumpv
// The dependency file is the one plain clang writes: the user's files.
// RUN: %cxx_plain -Wno-unknown-attributes -c %s -o %t/a.o -MD -MF %t/plain.d
// RUN: diff %t/a.d %t/plain.d
// RUN: FileCheck %s --check-prefix=DEP < %t/a.d
// DEP: a.o: \
// DEP-NEXT: actions.cpp{{$}}
// RUN: %cxx -S %s -o %t/a.s && FileCheck %s --check-prefix=ASM < %t/a.s
// ASM: _Z4Bumpv:
// RUN: %cxx -S -emit-llvm %s -o - | FileCheck %s --check-prefix=IR
// IR-DAG: define {{.*}}@_Z4Bumpv()
// IR-DAG: section "mmsb_pages", align 64
// RUN: %cxx -E %s -o %t/a.ii && FileCheck %s --check-prefix=PP < %t/a.ii
// The preprocessed output keeps the user's line numbers and builds without the plugin.
// PP: # [[@LINE+10]] "{{.*}}actions.cpp"
// PP-NEXT: struct {{.*}}S { int n;
// PP: public: static void* operator new
// PP: void Bump() { ::mmsb::rt::ws(&(g.n))++; }
// RUN: %cxx_plain -isystem %mmsb_include -fsyntax-only -x c++ %t/a.ii
// RUN: %cxx -fsyntax-only %s
// -save-temps: the preprocessed file is already rewritten; its compile takes it as it is.
// RUN: cd %t && %cxx -save-temps -c %s -o %t/st.o && llvm-nm-19 %t/st.o | FileCheck %s --check-prefix=OBJ
// -fsyntax-only writes nothing.
// RUN: cd %t && %cxx -fsyntax-only %s && not ls %t/actions.o
struct [[mmsb::page]] S { int n; };
[[mmsb::page]] S g;

void Bump() { g.n++; }
