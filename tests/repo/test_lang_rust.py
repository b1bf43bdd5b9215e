"""Rust: items, impl blocks, doc comments, `mod`/`use` forms and their resolution to files."""

import textwrap

from retrace.repo import RepoSnapshot, SourceFile, analyze_repository, summarize_file
from retrace.repo.languages import language_of

LIB = """\
//! Geometry for the crate.
//! Second line.

pub mod shapes;
mod util;
#[cfg(test)]
mod tests {
    use super::*;
}

use crate::util::strings::{trim, Pad as P};
use self::shapes::*;
use std::collections::HashMap;

/// A point.
#[derive(Debug, Clone)]
pub struct Point<T> { x: T }

/// Has an area.
pub trait Area: Named {
    fn area(&self) -> f64;
    fn name(&self) -> String { String::new() }
}

impl<T: Copy> Area for Point<T> {
    fn area(&self) -> f64 { trim(1.0) }
}

impl Other { pub fn new() -> Self { Other } }

/// Adds.
pub async fn add<T: Copy>(a: T, b: T) -> T { println!("{}", 1); a }
"""


def _graph(files: dict[str, str]):
    sources = [SourceFile(p, language_of(p), textwrap.dedent(t)) for p, t in sorted(files.items())]
    return analyze_repository(RepoSnapshot("geo", "mem", None, None, "", sources))


def test_rust_definitions_and_imports():
    s = summarize_file("src/lib.rs", "rust", LIB)
    assert s.parse_ok and s.docstring == "Geometry for the crate.\nSecond line."
    assert [(i.module, i.names, i.kind) for i in s.imports] == [
        ("shapes", [], "mod"),
        ("util", [], "mod"),
        ("crate::util::strings", ["trim", "Pad"], "use"),
        ("self::shapes", ["*"], "use"),
        ("std::collections", ["HashMap"], "use"),
    ]
    point, area, other = s.classes
    assert (point.name, point.bases, point.docstring) == ("Point", ["Area"], "A point.")
    assert [m.signature for m in point.methods] == ["fn area(&self) -> f64"]
    assert (area.bases, area.docstring) == (["Named"], "Has an area.")
    assert [m.signature for m in area.methods] == ["fn area(&self) -> f64", "fn name(&self) -> String"]
    assert (other.name, [m.signature for m in other.methods]) == ("Other", ["pub fn new() -> Self"])
    (add,) = s.functions
    assert (add.signature, add.docstring) == ("pub async fn add<T: Copy>(a: T, b: T) -> T", "Adds.")
    assert s.calls == ["String::new", "println!", "trim"]


def test_rust_mod_and_use_resolution():
    graph = _graph(
        {
            "Cargo.toml": '[package]\nname = "geo-kit"\nversion = "0.1.0"\n',
            "src/lib.rs": LIB,
            "src/shapes.rs": "mod circle;\nuse super::util::strings::trim;\npub struct S;\n",
            "src/shapes/circle.rs": "use crate::Point;\nuse super::S;\n",
            "src/util/mod.rs": "pub mod strings;\n",
            "src/util/strings.rs": "pub fn trim(x: f64) -> f64 { x }\n",
            "src/main.rs": "use geo_kit::shapes::S;\nfn main() {}\n",
            "tests/it.rs": "mod common;\nuse geo_kit::util::strings;\n",
            "tests/common/mod.rs": "pub fn setup() {}\n",
        }
    )
    deps = {p: s.deps for p, s in graph.files.items() if s.deps}
    assert deps == {
        "src/lib.rs": ["src/shapes.rs", "src/util/mod.rs", "src/util/strings.rs"],
        "src/shapes.rs": ["src/shapes/circle.rs", "src/util/strings.rs"],
        "src/shapes/circle.rs": ["src/lib.rs", "src/shapes.rs"],
        "src/util/mod.rs": ["src/util/strings.rs"],
        "src/main.rs": ["src/shapes.rs"],
        "tests/it.rs": ["src/util/strings.rs", "tests/common/mod.rs"],
    }
    assert graph.files["src/shapes/circle.rs"].module == "crate::shapes::circle"
    assert graph.cycles == [["src/lib.rs", "src/shapes.rs", "src/shapes/circle.rs"]]
    order = graph.dev_order
    assert order[0] == "Cargo.toml" and order[-1] == "tests/it.rs"
