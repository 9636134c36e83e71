# lit configuration for the MMSB plugin and mmsb-rewrite. One file per construct; expectations
# sit next to the code (CHECK lines against mmsb-rewrite output, expected-* for -verify).
import os

import lit.formats

config.name = "mmsb-plugin"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".cpp", ".c", ".test"]
config.excludes = ["Inputs"]
config.test_source_root = config.mmsb_lit_source_dir
config.test_exec_root = os.path.join(config.mmsb_lit_binary_dir, "out")

config.environment["PATH"] = os.pathsep.join(
    [config.llvm_tools_dir, config.environment.get("PATH", os.environ.get("PATH", ""))])
for var in ("HOME", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
# Compiles with the plugin capture IR; tests that do not choose a store share this one (and so
# exercise concurrent capture), instead of writing .mmsb/ into their working directories.
config.environment["MMSB_IR_STORE"] = os.path.join(config.test_exec_root, "shared-ir.db")

inputs = os.path.join(config.mmsb_lit_source_dir, "Inputs")
runtime_include = os.path.join(config.mmsb_source_dir, "runtime", "include")
cxx = config.clangxx + " -std=c++20 -isystem " + inputs
config.substitutions.append(("%inputs", inputs))
config.substitutions.append(("%mmsb_include", runtime_include))
config.substitutions.append(("%plugin", config.mmsb_plugin))
config.substitutions.append(("%rewrite", config.mmsb_rewrite))
config.substitutions.append(("%mmsb", config.mmsb_cli))
config.substitutions.append(("%python", config.python))
config.substitutions.append(("%llvm_diff", os.path.join(config.llvm_tools_dir, "llvm-diff")))
# %cxx_plain: clang 19 without the plugin; %cxx: with it.
config.substitutions.append(("%clang_c", config.clangxx.replace("clang++", "clang") + " -x c"))
config.substitutions.append(("%cxx_plain", cxx))
config.substitutions.append(("%cxx", cxx + " -fplugin=" + config.mmsb_plugin))
# The rewritten source keeps the test's own comments, so CHECK lines would match themselves:
# checks of mmsb-rewrite output run on it with every // comment removed.
config.substitutions.append(("%strip_comments", "sed -e 's#[[:space:]]*//.*$##'"))
config.substitutions.append(("%rw", config.mmsb_rewrite + " --extra-arg=-std=c++20 "
                             "--extra-arg=-isystem --extra-arg=" + inputs))
