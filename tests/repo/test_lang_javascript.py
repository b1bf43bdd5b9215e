"""JavaScript/TypeScript: definitions, every import form, and relative-specifier resolution."""

import textwrap

from retrace.repo import RepoSnapshot, SourceFile, analyze_repository, summarize_file
from retrace.repo.languages import language_of


def _graph(files: dict[str, str]):
    sources = [SourceFile(p, language_of(p), textwrap.dedent(t)) for p, t in sorted(files.items())]
    return analyze_repository(RepoSnapshot("web", "mem", None, None, "", sources))


def test_typescript_definitions_and_imports():
    s = summarize_file(
        "src/shapes.ts",
        "typescript",
        textwrap.dedent(
            """\
            import type { Point } from './geometry';
            import * as log from "../lib/log.js";
            import fs from 'fs';
            import x = require('./legacy');
            export { area } from './area';

            /** A shape with an area. */
            export interface Shape extends Named { area(): number; }

            /** Circle of radius r. */
            export class Circle extends Base implements Shape {
              constructor(private r: number) { super(); }
              area(): number { return Math.PI * this.r ** 2; }
            }

            export function scale<T extends Shape>(s: T, k = 2): T { return helper(s, k); }
            export const twice = async (n: number): Promise<number> => n * 2;
            const lazy = () => import('./lazy');
            """
        ),
    )
    assert s.parse_ok and s.language == "typescript"
    assert [(i.module, i.names, i.kind) for i in s.imports] == [
        ("./geometry", ["Point"], "import"),
        ("../lib/log.js", ["*"], "import"),
        ("fs", ["default"], "import"),
        ("./legacy", [], "require"),
        ("./area", ["area"], "export"),
        ("./lazy", [], "dynamic"),
    ]
    shape, circle = s.classes
    assert (shape.name, shape.bases, shape.docstring) == ("Shape", ["Named"], "A shape with an area.")
    assert [m.signature for m in shape.methods] == ["area(): number"]
    assert (circle.name, circle.bases, circle.docstring, circle.line) == (
        "Circle", ["Base", "Shape"], "Circle of radius r.", 11,
    )  # fmt: skip
    assert [m.signature for m in circle.methods] == ["constructor(private r: number)", "area(): number"]
    assert [(f.name, f.signature) for f in s.functions] == [
        ("scale", "function scale<T extends Shape>(s: T, k = 2): T"),
        ("twice", "const twice = async (n: number): Promise<number> =>"),
        ("lazy", "const lazy = () =>"),
    ]
    assert s.calls == ["helper", "super"]  # require()/import() are imports, not calls


def test_javascript_commonjs_and_jsdoc():
    s = summarize_file(
        "lib/util.js",
        "javascript",
        "const path = require('path');\nconst { a } = require('./a');\n\n"
        "/**\n * Joins parts.\n * @param {string[]} parts\n */\nfunction join(...parts) { return path.join(...parts); }\n"
        "module.exports = { join };\n",
    )
    assert [(i.module, i.kind, i.line) for i in s.imports] == [("path", "require", 1), ("./a", "require", 2)]
    (join,) = s.functions
    assert join.signature == "function join(...parts)"
    assert join.docstring == "Joins parts.\n@param {string[]} parts"
    assert s.calls == ["path.join"]


def test_relative_resolution_extensions_and_index():
    graph = _graph(
        {
            "package.json": '{"name": "web"}',
            "src/index.ts": "import { App } from './app';\nimport './styles/theme.js';\nexport * from './util';\n",
            "src/app.tsx": "import { h } from '../lib/h.js';\nimport cfg from './config.json';\nimport React from 'react';\n",
            "src/util/index.ts": "export const u = require('./strings');\n",
            "src/util/strings.js": "module.exports = {};\n",
            "src/styles/theme.ts": "",
            "src/config.json": "{}",
            "lib/h.js": "const self = require('./h.js');\nconst up = require('../../outside');\n",
            "test/app.test.ts": "import { App } from '../src/app';\n",
        }
    )
    deps = {p: s.deps for p, s in graph.files.items() if s.deps}
    assert deps == {
        "src/index.ts": ["src/app.tsx", "src/styles/theme.ts", "src/util/index.ts"],  # .js -> .ts
        "src/app.tsx": ["lib/h.js", "src/config.json"],
        "src/util/index.ts": ["src/util/strings.js"],
        "test/app.test.ts": ["src/app.tsx"],
    }
    order = graph.dev_order
    assert order[0] == "package.json"
    assert order.index("lib/h.js") < order.index("src/app.tsx") < order.index("src/index.ts")
    assert order[-1] == "test/app.test.ts"
