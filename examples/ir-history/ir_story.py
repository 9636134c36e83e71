#!/usr/bin/env python3
"""Turns `mmsb ir ... --json` into the one-line summaries ir-history.sh prints and checks.

  ir_story.py diff MMSB     reads `mmsb ir diff --json`: "renamed Tax(long) -> Levy(long); changed Post(int, long)"
  ir_story.py history       reads `mmsb ir history --json`: "added 1, changed 2"
"""
import json
import subprocess
import sys

ORDER = {'removed': 0, 'added': 1, 'renamed': 2, 'renamed+changed': 2, 'moved': 3, 'moved+changed': 3, 'changed': 4}


def demangled(mmsb, mangled):
    # The diff names a renamed function's old version by its mangled name; its history knows more.
    out = subprocess.run([mmsb, 'ir', 'history', mangled, '--json'], capture_output=True, text=True)
    try:
        return json.loads(out.stdout)['functions'][0]['demangled']
    except (ValueError, KeyError, IndexError):
        return mangled


def diff(mmsb):
    d = json.load(sys.stdin)
    parts = []
    for f in sorted(d['functions'], key=lambda f: (ORDER.get(f['kind'], 9), f['demangled'])):
        name = f['demangled']
        if f['kind'].startswith('renamed'):
            name = demangled(mmsb, f['old_name']) + ' -> ' + name
        parts.append(f"{f['kind']} {name}")
    print('; '.join(parts) if parts else 'nothing changed')


def history():
    h = json.load(sys.stdin)
    changes = [c for f in h['functions'] for c in f['changes']]
    print(', '.join(f"{c['change']} {c['generation']}" for c in changes))


if __name__ == '__main__':
    if sys.argv[1] == 'diff':
        diff(sys.argv[2])
    else:
        history()
