/* retrace viewer: lazy code highlighting, expand/collapse, #anchor opening, index filter.
   Reads repository text only through textContent and writes it back only as text nodes, so no
   repository content is ever parsed as HTML. Sets <body data-ready="1"> when set up without error. */
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) { body.setAttribute("data-js-error", String(e.message)); });

  var C_LIKE = "break case catch const continue default do else for goto if return static struct switch while";
  var KEYWORDS = {
    python: "False None True and as assert async await break class continue def del elif else except finally for " +
      "from global if import in is lambda nonlocal not or pass raise return try while with yield match case",
    javascript: "async await break case catch class const continue debugger default delete do else export extends " +
      "false finally for function if import in instanceof let new null of return static super switch this throw " +
      "true try typeof undefined var void while with yield",
    go: "break case chan const continue default defer else fallthrough for func go goto if import interface map nil " +
      "package range return select struct switch true false type var",
    java: "abstract boolean byte char class double extends final float implements import instanceof int interface " +
      "long new null package private protected public short super this throw throws true false try void " + C_LIKE,
    c: "auto char double enum extern float int long register short signed sizeof typedef union unsigned void " +
      "volatile NULL #include #define #ifdef #ifndef #endif " + C_LIKE,
    rust: "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod " +
      "move mut pub ref return self Self static struct super trait true type unsafe use where while",
    ruby: "alias and begin break case class def defined? do else elsif end ensure false for if in module next nil " +
      "not or redo rescue retry return self super then true undef unless until when while yield",
    shell: "if then else elif fi for while do done case esac function in return local export"
  };
  KEYWORDS.typescript = KEYWORDS.javascript + " interface type enum implements private public readonly";
  KEYWORDS.cpp = KEYWORDS.c + " class namespace template typename public private protected virtual new delete " +
    "this true false nullptr using";
  var BUILTINS = { python: "print len range str int float list dict set tuple bool bytes object type isinstance " +
    "super self cls open iter next enumerate zip map filter sorted min max sum any all repr getattr setattr hasattr" };
  var DEFINERS = { def: 1, "class": 1, func: 1, "function": 1, fn: 1, struct: 1, "interface": 1 };
  var HASH_COMMENTS = { python: 1, ruby: 1, shell: 1 };
  var MAX_CHARS = 400000;  /* bigger blocks stay plain: highlighting is a convenience, not worth a frozen tab */
  var compiled = {};

  function words(list) {
    var set = {};
    (list || "").split(" ").forEach(function (w) { if (w) { set[w] = 1; } });
    return set;
  }

  function grammar(lang) {
    if (compiled[lang]) { return compiled[lang]; }
    var comment = HASH_COMMENTS[lang] ? "#.*" : "\\/\\/.*|\\/\\*[\\s\\S]*?\\*\\/";
    var strings = "\"(?:\\\\[\\s\\S]|[^\"\\\\\\n])*\"|'(?:\\\\[\\s\\S]|[^'\\\\\\n])*'";
    if (lang === "python") { strings = "[rRbBuUfF]{0,2}(?:\"\"\"[\\s\\S]*?\"\"\"|'''[\\s\\S]*?''')|[rRbBuUfF]{0,2}(?:" + strings + ")"; }
    if (lang === "javascript" || lang === "typescript" || lang === "go") { strings += "|`(?:\\\\[\\s\\S]|[^`\\\\])*`"; }
    var source = "(" + comment + ")|(" + strings + ")|(\\b0[xX][0-9a-fA-F_]+\\b|\\b\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?\\b)" +
      "|(@[A-Za-z_][\\w.]*)|(#?[A-Za-z_$][\\w$]*\\??)";
    compiled[lang] = { re: new RegExp(source, "g"), kw: words(KEYWORDS[lang]), bi: words(BUILTINS[lang]) };
    return compiled[lang];
  }

  function span(cls, text) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function highlight(code) {
    code.setAttribute("data-hl", "1");
    var lang = code.getAttribute("data-lang");
    var text = code.textContent;
    if (lang === "text" || text.length > MAX_CHARS) { return; }
    var g = grammar(lang), re = g.re, frag = document.createDocumentFragment();
    var last = 0, prevDefiner = false, m;
    re.lastIndex = 0;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) { re.lastIndex += 1; continue; }
      var cls = null;
      if (m[1]) { cls = "tk-com"; } else if (m[2]) { cls = "tk-str"; } else if (m[3]) { cls = "tk-num"; }
      else if (m[4]) { cls = lang === "python" ? "tk-dec" : null; }
      else if (g.kw[m[5]]) { cls = "tk-kw"; } else if (prevDefiner) { cls = "tk-fn"; } else if (g.bi[m[5]]) { cls = "tk-bi"; }
      prevDefiner = Boolean(m[5] && DEFINERS[m[5]]);
      if (!cls) { continue; }
      if (m.index > last) { frag.appendChild(document.createTextNode(text.slice(last, m.index))); }
      frag.appendChild(span(cls, m[0]));
      last = m.index + m[0].length;
    }
    frag.appendChild(document.createTextNode(text.slice(last)));
    code.textContent = "";
    code.appendChild(frag);
  }

  function highlightVisible(root) {
    var codes = root.querySelectorAll("code[data-lang]:not([data-hl])");
    for (var i = 0; i < codes.length; i++) {
      if (!codes[i].closest("details:not([open])")) { highlight(codes[i]); }
    }
  }

  document.addEventListener("toggle", function (e) {
    if (e.target.open) { highlightVisible(e.target); }
  }, true);

  function setEpisodes(open) {
    var eps = document.querySelectorAll("details.episode");
    for (var i = 0; i < eps.length; i++) { eps[i].open = open; }
  }
  var buttons = document.querySelectorAll("button[data-act]");
  for (var b = 0; b < buttons.length; b++) {
    buttons[b].addEventListener("click", function (e) { setEpisodes(e.target.getAttribute("data-act") === "expand"); });
  }

  /* "#ep-3" opens that episode (the browser scrolls to it); "#expand" opens them all. */
  function openHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (id === "expand") { setEpisodes(true); return; }
    var el = id && document.getElementById(id);
    for (var node = el; node; node = node.parentElement) { if (node.tagName === "DETAILS") { node.open = true; } }
  }
  window.addEventListener("hashchange", openHash);
  openHash();

  var filter = document.getElementById("filter");
  if (filter) {
    filter.addEventListener("input", function () {
      var q = filter.value.toLowerCase(), rows = document.querySelectorAll("#repos tbody tr");
      for (var i = 0; i < rows.length; i++) { rows[i].hidden = rows[i].textContent.toLowerCase().indexOf(q) < 0; }
    });
  }

  highlightVisible(document);
  body.setAttribute("data-ready", "1");
}());
