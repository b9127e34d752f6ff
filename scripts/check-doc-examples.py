#!/usr/bin/env python3
"""Lists public items of the library crates whose rustdoc has no example.

An item is a line starting (after indentation) with `pub fn`, `pub async fn`, `pub const fn`,
`pub unsafe fn`, `pub struct`, `pub enum`, `pub trait`, `pub type`, `pub const`, `pub static`
or `pub mod` in `<crate>/src`, or a `#[proc_macro*]` function. Its doc comment is the run of
`///` lines (and attributes) right above it; it has an example when that comment holds a fenced
code block. Modules may carry their example as `//!` inner docs instead (or through
`#![doc = include_str!(..)]` of a Markdown page with a code block).

Exit status 1 when an item lacks an example; the list says which (file:line item).
Usage: scripts/check-doc-examples.py [crate ...]
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATES = ["otel-core", "otel-tower", "otel-sqlx", "otel-redis", "otel-amqp", "otel-macros"]
ITEM = re.compile(
    r"^\s*pub\s+(?:(?:const|async|unsafe|extern\s+\"C\")\s+)*(fn|struct|enum|trait|type|const|static|mod)\s+([A-Za-z_][A-Za-z0-9_]*)"
)
PROC_MACRO = re.compile(r"^\s*#\[proc_macro(_attribute|_derive)?")


# Fences rustdoc compiles as Rust: no language, or `rust` and rustdoc's attributes (not
# `text`, `ignore`, `sh`, ...): an example must be a doc test.
RUST_FENCE = re.compile(
    r"^```\s*((rust|no_run|should_panic|compile_fail|edition\d+)(\s*,\s*(rust|no_run|should_panic|compile_fail|edition\d+))*)?\s*$"
)


def is_rust_fence(line):
    return RUST_FENCE.match(line.strip()) is not None


def has_rust_block(lines):
    """Whether the (doc comment or Markdown) lines open a code block rustdoc runs."""
    inside = False
    for line in lines:
        line = line.strip()
        if not line.startswith("```"):
            continue
        if inside:
            inside = False  # the closing fence
            continue
        inside = True
        if is_rust_fence(line):
            return True
    return False


def has_fence(lines):
    return has_rust_block(l.lstrip().lstrip("/!") for l in lines)


def module_has_example(path: pathlib.Path) -> bool:
    text = path.read_text()
    inner = [l for l in text.splitlines() if l.lstrip().startswith("//!")]
    if has_fence(inner):
        return True
    for m in re.finditer(r'#!\[doc\s*=\s*include_str!\("([^"]+)"\)\]', text):
        md = (path.parent / m.group(1)).resolve()
        if md.exists() and has_rust_block(md.read_text().splitlines()):
            return True
    return False


def module_file(path: pathlib.Path, name: str):
    for cand in (path.parent / f"{name}.rs", path.parent / name / "mod.rs",
                 path.parent / path.stem / f"{name}.rs", path.parent / path.stem / name / "mod.rs"):
        if cand.exists():
            return cand
    return None


def check_file(path: pathlib.Path):
    missing = []
    lines = path.read_text().splitlines()
    in_test_mod = False
    for i, line in enumerate(lines):
        if re.match(r"^\s*#\[cfg\(test\)\]", line):
            in_test_mod = True
        if in_test_mod:
            continue
        m = ITEM.match(line)
        is_macro = False
        if not m:
            if PROC_MACRO.match(line):
                is_macro = True
            else:
                continue
        if m and m.group(1) == "mod" and line.rstrip().endswith(";"):
            target = module_file(path, m.group(2))
            if target is None or module_has_example(target):
                continue
            # fall through: the outer `///` docs may carry the example
        # walk up over attributes and doc comments
        j = i - 1
        docs = []
        while j >= 0:
            s = lines[j].strip()
            if s.startswith("///") or s.startswith("#[") or s.startswith("#![") or (
                s and not s.startswith("//") and docs and lines[j].rstrip().endswith(")]")
            ):
                docs.append(lines[j])
                j -= 1
                continue
            if s.startswith("//") and not s.startswith("///"):
                j -= 1
                continue
            break
        if has_fence(docs) or any("doc(hidden)" in d for d in docs):
            continue
        if m and m.group(1) == "mod" and not line.rstrip().endswith(";"):
            # inline module: its inner docs follow the opening line
            k = i + 1
            inner = []
            while k < len(lines) and lines[k].strip().startswith("//!"):
                inner.append(lines[k])
                k += 1
            if has_fence(inner):
                continue
        name = m.group(2) if m else "proc macro"
        kind = m.group(1) if m else "macro"
        missing.append(f"{path.relative_to(ROOT)}:{i + 1} {kind} {name}")
    return missing


def main():
    crates = sys.argv[1:] or CRATES
    missing = []
    for crate in crates:
        for path in sorted((ROOT / crate / "src").rglob("*.rs")):
            missing += check_file(path)
    for m in missing:
        print(m)
    print(f"{len(missing)} public items without a doc example", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
