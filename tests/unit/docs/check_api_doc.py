#!/usr/bin/env python3
"""Keeps docs/API.md true to the code (ctest docs_api_doc_matches_sources).

1. Every ```cpp block of docs/API.md must appear in one of tests/unit/docs/api_*_test.cc (or in
   docs_api_test.h, which holds the example type several chapters use), which
   compiles and runs it: the same tokens in the same order, whitespace and line breaks aside (the
   test file is clang-formatted, the document keeps its own layout), `//` markers of line
   comments aside (clang-format reflows comments).
2. Every public header (runtime/include/mmsb/*.h, kernels/include/mmsb/*.h) has a section
   headed `mmsb/<name>.h` with at least one example, and every name it declares at namespace scope (types, functions,
   constants, aliases, MMSB_ macros; `detail` namespaces and out-of-class member definitions
   excluded) appears in backquotes in the document.

usage: check_api_doc.py <source root>
"""
import pathlib
import re
import sys

DECLARATIONS = [
    # struct/class/enum definitions (forward declarations end with ';' and are skipped)
    re.compile(r'^(?:struct|class|enum class|enum)\s+(?:\[\[\w+\]\]\s+)?(\w+)\b(?!\s*;)'),
    re.compile(r'^using\s+(\w+)\s*='),
    re.compile(r'^(?:inline\s+)?constexpr\s+[\w:]+\s+(\w+)\s*[=(]'),
    re.compile(r'^extern\s+[\w:]+\s+(\w+)\s*;'),
    re.compile(r'^#define\s+(MMSB_\w+)'),
    # functions: [[attr]] [inline|static|constexpr] return-type name(
    re.compile(r'^(?:\[\[[\w:]+\]\]\s+)?(?:(?:inline|static|constexpr)\s+)*(?:const\s+)?'
               r'[\w:<>,\*& ]*?[\w>\*&]\s*[\s\*&](?<!::)(\w+)\s*\('),
]


def public_names(header):
    names = []
    detail_depth = 0  # brace depth inside a `detail` namespace
    for line in header.read_text().splitlines():
        if re.match(r'^namespace\s+(?:[\w:]+::)?detail\s*\{', line):
            detail_depth = 1
            continue
        if detail_depth:
            code = line.split('//')[0]
            detail_depth += code.count('{') - code.count('}')
            continue
        if not line or line[0].isspace() or line.startswith('//'):
            continue
        if re.match(r'^\S+::\w+\s*\(', line) or re.search(r'\w::\w+\s*\(', line.split('(')[0] + '('):
            continue  # an out-of-class member definition: documented with its class
        for pattern in DECLARATIONS:
            m = pattern.match(line)
            if m:
                if m.group(1) not in names and m.group(1) not in ('if', 'for', 'return'):
                    names.append(m.group(1))
                break
    return names


def normalised(lines):
    return [l.strip() for l in lines if l.strip()]


def squeezed(text):
    """Text without whitespace and without the `//` of line comments: what formatting keeps."""
    return re.sub(r'\s+', '', text.replace('//', ''))


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else '.')
    doc = (root / 'docs/API.md').read_text()
    docs = root / 'tests/unit/docs'
    sources = sorted(docs.glob('api_*_test.cc')) + [docs / 'docs_api_test.h']
    examples = normalised([line for source in sources for line in source.read_text().splitlines()])
    errors = []

    blocks = re.findall(r'^```cpp\n(.*?)^```', doc, re.S | re.M)
    joined = squeezed('\n'.join(examples))
    for block in blocks:
        want = normalised(block.splitlines())
        if not want:
            continue
        if squeezed('\n'.join(want)) not in joined:
            # Name the first line that is not where it should be.
            first = want[0]
            where = [i for i, l in enumerate(examples) if l == first]
            bad = first
            for i in where:
                for k, line in enumerate(want):
                    if i + k >= len(examples) or examples[i + k] != line:
                        bad = line
                        break
            errors.append(f'docs/API.md: this example is not in tests/unit/docs/api_*_test.cc '
                          f'(first differing line: {bad!r}):\n{block}')

    quoted = ' '.join(re.findall(r'`([^`\n]+)`', doc))
    quoted_words = set(re.findall(r'\w+', quoted))
    headers = sorted((root / 'runtime/include/mmsb').glob('*.h')) + sorted((root / 'kernels/include/mmsb').glob('*.h'))
    for header in headers:
        title = f'mmsb/{header.name}'
        section = re.search(r'^##\s+`' + re.escape(title) + r'`\n(.*?)(?=^## |\Z)', doc, re.M | re.S)
        if not section:
            errors.append(f'docs/API.md has no section "## `{title}`"')
        elif '```cpp' not in section.group(1):
            errors.append(f'docs/API.md: the section on {title} has no example')
        missing = [n for n in public_names(header) if n not in quoted_words]
        if missing:
            errors.append(f'docs/API.md does not mention these names of {title}: {", ".join(missing)}')
    for title in re.findall(r'^##\s+`(mmsb/\w+\.h)`', doc, re.M):
        if not any(f'mmsb/{h.name}' == title for h in headers):
            errors.append(f'docs/API.md documents {title}, which is not a public header')

    if errors:
        print('\n\n'.join(errors))
        return 1
    print(f'docs/API.md: {len(blocks)} examples compiled in tests/unit/docs/api_*_test.cc; '
          f'{len(headers)} public headers, every namespace-scope name documented')
    return 0


if __name__ == '__main__':
    sys.exit(main())
