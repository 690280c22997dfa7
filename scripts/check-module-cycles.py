#!/usr/bin/env python3
"""Fails when the top-level modules of a crate depend on each other in a circle.

A module here is a file or directory directly under a crate's `src/`; it depends on
another when its code (comments and `#[cfg(test)] mod tests` excluded) names
`crate::<other>`. Circles are printed with the edges that make them.

    scripts/check-module-cycles.py            # every crate under crates/
    scripts/check-module-cycles.py crates/core
"""
import os
import re
import sys


def graph(src):
    deps = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            text = open(path).read()
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
            code = "\n".join(line for line in text.splitlines()
                             if not line.lstrip().startswith("//"))
            deps.setdefault(top, set()).update(
                m for m in re.findall(r"crate::([a-z_][a-z0-9_]*)", code) if m != top)
    return {m: {d for d in ds if d in deps} for m, ds in deps.items()}


def circles(g):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
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
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main():
    sys.setrecursionlimit(10000)
    crates = sys.argv[1:] or sorted(os.path.join("crates", c) for c in os.listdir("crates"))
    bad = 0
    for crate in crates:
        src = os.path.join(crate, "src")
        if not os.path.isdir(src):
            continue
        g = graph(src)
        for comp in circles(g):
            bad += 1
            print(f"{crate}: modules in a circle: {', '.join(comp)}")
            for m in comp:
                print(f"    {m} -> {', '.join(sorted(d for d in g[m] if d in comp))}")
    if bad:
        sys.exit(1)
    print(f"no module circles in {len(crates)} crates")


if __name__ == "__main__":
    main()
