"""Java: types, methods and constructors, imports, resolution by package and same-package names."""

import textwrap

from retrace.repo import RepoSnapshot, SourceFile, analyze_repository, summarize_file
from retrace.repo.languages import language_of

STRINGS = """\
package com.acme.util;

/** String helpers. */
public final class Strings {
    private Strings() {}

    /**
     * Trims and lower-cases.
     */
    @SuppressWarnings("unused")
    public static String norm(final String s) throws IllegalArgumentException {
        return s.trim().toLowerCase();
    }

    public static class Pad { int width; }
}
"""


def _graph(files: dict[str, str]):
    sources = [SourceFile(p, language_of(p), textwrap.dedent(t)) for p, t in sorted(files.items())]
    return analyze_repository(RepoSnapshot("acme", "mem", None, None, "", sources))


def test_java_definitions():
    s = summarize_file("src/main/java/com/acme/util/Strings.java", "java", STRINGS)
    assert s.parse_ok and s.module == "com.acme.util.Strings" and s.functions == []
    strings, pad = s.classes
    assert (strings.name, strings.docstring, strings.line) == ("Strings", "String helpers.", 4)
    assert [(m.name, m.signature, m.docstring) for m in strings.methods] == [
        ("Strings", "private Strings()", None),
        (
            "norm",
            "public static String norm(final String s) throws IllegalArgumentException",
            "Trims and lower-cases.",
        ),
    ]
    assert pad.name == "Strings.Pad"
    assert s.calls == ["s.trim"]  # a chained call on a call result is computed: dropped


def test_java_imports_and_resolution():
    graph = _graph(
        {
            "pom.xml": "<project/>",
            "src/main/java/com/acme/util/Strings.java": STRINGS,
            "src/main/java/com/acme/util/MathUtil.java": "package com.acme.util;\npublic class MathUtil { public static int max(int a, int b) { return a; } }\n",
            "src/main/java/com/acme/model/User.java": "package com.acme.model;\npublic record User(String name) {}\n",
            "src/main/java/com/acme/model/Group.java": "package com.acme.model;\nimport java.util.List;\npublic class Group { List<User> users; }\n",
            "src/main/java/com/acme/app/App.java": """\
                package com.acme.app;

                import com.acme.util.Strings;
                import static com.acme.util.MathUtil.max;
                import com.acme.model.*;
                import java.util.Map;

                public class App implements Runnable {
                    @Override public void run() { new Service().go(Strings.norm("X")); }
                }
                """,
            "src/main/java/com/acme/app/Service.java": "package com.acme.app;\nclass Service { void go(String s) {} }\n",
            "src/test/java/com/acme/app/AppTest.java": "package com.acme.app;\nclass AppTest { void t() { new App().run(); } }\n",
        }
    )
    app = graph.files["src/main/java/com/acme/app/App.java"]
    assert [(i.module, i.names, i.kind) for i in app.imports] == [
        ("com.acme.util.Strings", [], "import"),
        ("com.acme.util.MathUtil.max", [], "static"),
        ("com.acme.model", ["*"], "import"),
        ("java.util.Map", [], "import"),
    ]
    assert app.deps == [
        "src/main/java/com/acme/app/Service.java",  # same package, by name
        "src/main/java/com/acme/model/Group.java",
        "src/main/java/com/acme/model/User.java",
        "src/main/java/com/acme/util/MathUtil.java",
        "src/main/java/com/acme/util/Strings.java",
    ]
    assert graph.files["src/main/java/com/acme/model/Group.java"].deps == [
        "src/main/java/com/acme/model/User.java"
    ]
    assert graph.files["src/test/java/com/acme/app/AppTest.java"].deps == [
        "src/main/java/com/acme/app/App.java"
    ]
    order = graph.dev_order
    assert order.index("src/main/java/com/acme/app/Service.java") < order.index(
        "src/main/java/com/acme/app/App.java"
    )
    assert order[-1] == "src/test/java/com/acme/app/AppTest.java"
