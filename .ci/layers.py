#!/usr/bin/env python3
"""The workspace's layering, checked (README, Layout). CI runs it; it exits 1 naming each problem.

1. Each crate depends (normal, dev or build) only on the rfm crates its row of MAY_USE names.
2. Within each crate, at every level of nesting, no two sibling modules import each other,
   directly or around a circle. An import is any `crate::`, `super::` or `self::` path in code
   outside tests (`#[cfg(test)]` onwards, and files named `tests.rs` or `*_tests.rs`),
   `use` trees included; it counts between the two siblings under which its ends lie.
3. `clap` appears only in the binary crate (the top package) and, elsewhere, in the
   feature-gated derives `#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]`.

    python3 .ci/layers.py            # from the repository's top folder
"""

import json
import os
import re
import subprocess
import sys

# The crates, lowest layer first, and the rfm crates each may use.
MAY_USE = {
    "rfm-core": [],
    "rfm-engines": ["rfm-core"],
    "rfm-llm": ["rfm-core"],
    "rfm-campaigns": ["rfm-core", "rfm-llm"],
    "rfm-report": ["rfm-core", "rfm-llm", "rfm-campaigns"],
    "rfm-run": ["rfm-core", "rfm-engines", "rfm-llm", "rfm-campaigns", "rfm-report"],
    "rfm-server": ["rfm-core", "rfm-engines", "rfm-llm", "rfm-campaigns", "rfm-report", "rfm-run"],
    "rfm-agent": ["rfm-core", "rfm-engines", "rfm-llm", "rfm-campaigns", "rfm-report", "rfm-run",
                  "rfm-server"],
}
BINARY = "rfm-agent"
CLAP_GATE = 'cfg_attr(feature = "clap", derive(clap::ValueEnum))'


def packages():
    out = subprocess.run(["cargo", "metadata", "--no-deps", "--format-version", "1"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["packages"]


def check_crates(pkgs):
    problems = []
    names = {p["name"] for p in pkgs}
    for name in sorted(names - set(MAY_USE)):
        problems.append(f"{name}: not in the layering (.ci/layers.py MAY_USE, README Layout)")
    for p in pkgs:
        allowed = set(MAY_USE.get(p["name"], []))
        for d in p["dependencies"]:
            if d["name"] in names and d["name"] not in allowed:
                problems.append(f"{p['name']} depends on {d['name']}, which is not below it")
    return problems


def strip(text):
    """The code outside tests, without comments and string literals."""
    text = text.split("#[cfg(test)]")[0]
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)  # char literals, '"' among them
    text = re.sub(r'\br#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"//[^\n]*", "", text)
    return text


def module_of(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def use_paths(tree):
    """Expands a `use` tree (`a::{b, c::{d, e as f}}`) to its full paths."""
    tree = re.sub(r"\s+as\s+", "@", tree)  # an alias is skipped with what follows it
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s, i):
        # Parses items separated by commas until `}` or the end; returns the index reached.
        while i < len(s):
            m = re.match(r"((?:[A-Za-z_0-9]+::)*)(\{|[A-Za-z_0-9*]+)", s[i:])
            if not m:
                return i
            head = [x for x in m.group(1).split("::") if x]
            i += m.end()
            if m.group(2) == "{":
                i = walk(prefix + head, s, i)
                i += 1  # the closing brace
            else:
                last = m.group(2)
                out.append(prefix + head + ([] if last in ("self", "*") else [last]))
            while i < len(s) and s[i] not in ",}":
                i += 1
            if i < len(s) and s[i] == ",":
                i += 1
            elif i < len(s) and s[i] == "}":
                return i
        return i

    walk([], tree, 0)
    return out


def references(text, here):
    """Module paths a file's code names, absolute within its crate."""
    paths = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", text):
        paths += use_paths(m.group(1))
    code = re.sub(r"\buse\s+[^;]*;", "", text)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::[A-Za-z_0-9]+)+)", code):
        paths.append(m.group(1).split("::"))
    resolved = []
    for p in paths:
        if p[0] == "crate":
            resolved.append(p[1:])
            continue
        # `self` is the module itself and `super` its parent, whatever the file's name.
        cur, rest = list(here), list(p)
        while rest and rest[0] in ("self", "super"):
            if rest.pop(0) == "super":
                cur = cur[:-1]
        resolved.append(cur + rest)
    return resolved


def cycles(edges):
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def check_modules(name, src):
    files = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs") and f != "tests.rs" and not f.endswith("_tests.rs"):
                path = os.path.join(d, f)
                files[module_of(src, path)] = path
    modules = set(files)
    siblings = {}  # parent -> {child -> {child}}
    for here, path in files.items():
        with open(path, encoding="utf-8") as fh:
            text = strip(fh.read())
        for ref in references(text, here):
            target = None
            for n in range(len(ref), -1, -1):
                if tuple(ref[:n]) in modules:
                    target = tuple(ref[:n])
                    break
            if target is None:
                continue
            common = 0
            while common < min(len(here), len(target)) and here[common] == target[common]:
                common += 1
            if common == len(here) or common == len(target):
                continue  # one contains the other: a parent and its own child
            parent, a, b = here[:common], here[common], target[common]
            siblings.setdefault(parent, {}).setdefault(a, set()).add(b)
    problems = []
    for parent, edges in sorted(siblings.items()):
        for comp in cycles(edges):
            where = "::".join(parent) or "the crate root"
            problems.append(f"{name}: modules under {where} import each other: {', '.join(comp)}")
    return problems


def check_clap(name, src):
    problems = []
    if name == BINARY:
        return problems
    for d, _, fs in os.walk(src):
        for f in fs:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(d, f)
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if "clap" in line and CLAP_GATE not in line:
                        problems.append(f"{path}:{n}: clap outside the binary crate: {line.strip()}")
    return problems


def main():
    pkgs = packages()
    problems = check_crates(pkgs)
    for p in pkgs:
        src = os.path.join(os.path.dirname(p["manifest_path"]), "src")
        problems += check_modules(p["name"], src)
        problems += check_clap(p["name"], src)
    for line in problems:
        print(f"layers: {line}", file=sys.stderr)
    if problems:
        return 1
    print(f"layers: {len(pkgs)} crates, each using only those below it; no module cycles; "
          "clap only in the binary and its gated derives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
