"""The differential program generator behind tests/fidelity/fidelity.py, by concept:

  grammar    the productions and the program generator (a seed gives the same program always)
  toolchain  the compiler, the build tree's plugin, runtime and replay tool, the precompiled
             prelude, and running a command under a CPU-time limit
  oracle     building one program with and without the plugin, running it and comparing its
             log, replayed, with the ground truth at every commit
  reduce     cvise's interestingness test, reduction, and the reduction self-test
  campaign   running many programs (resumable through a results file), summarising them, and
             naming the issue-13 defect classes behind failures
  cli        the command line
"""
