#!/usr/bin/env bash
# The README's quickstart, as written there: compiled with mmsb-c++, run, and inspected with the
# commands the README shows, so the README cannot drift from the product.
# usage: readme_quickstart.sh <build dir> <source dir> <scratch dir>
set -euo pipefail
build="$1"; src="$2"; scratch="$3"
rm -rf "$scratch"; mkdir -p "$scratch"; cd "$scratch"
python3 - "$src/README.md" > app.cpp <<'PY'
import sys
text = open(sys.argv[1]).read()
section = text[text.index("## Quickstart"):]
start = section.index("```cpp\n") + len("```cpp\n")
print(section[start:section.index("```", start)])
PY
"$build/bin/mmsb-c++" -O2 app.cpp -o app
./app
"$build/tools/mmsb" diff run.tlog --from 41 --to 42 | tee diff.txt
grep -qF "Counters.hits[1]: 5 -> 6" diff.txt
"$build/tools/mmsb" replay run.tlog --epoch 42 --json > state.json
grep -q '"epoch": 42' state.json
echo "README quickstart works as written"
