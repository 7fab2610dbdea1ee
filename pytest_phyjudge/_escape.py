"""One escape per medium: the only way a string we did not write reaches Markdown, a terminal
or a chart label.

Threat model. Run names, suite names, case ids, axis and law names, judge names and error
texts come from users' suites, ``scores.json`` reports, results files, cache records and
judge servers, any of which may be written by someone we do not trust. What we make of them
is published: Markdown goes into pull-request comments and CI job summaries (where an image
is a tracking pixel, a link or ``@mention`` is live, and a ``|`` or newline forges table rows),
terminal text goes to CI logs and developers' terminals (where ESC sequences recolour, hide
or rewrite what was printed and ``\\r`` overwrites a line), and chart labels go through
matplotlib (where ``$...$`` is parsed as TeX and a bad formula ends the run). Each function
here makes such a string inert in its medium, showing the text as it was written; the HTML
report escapes markup with Jinja2's autoescape, after :func:`page_text` has shown its control
characters (a bidi override in a case id reorders what a reader of the page sees, a NUL or ESC
is no text). No heavy imports: every layer may use this.
"""

from __future__ import annotations

import re

__all__ = [
    "PLOT_RC",
    "Markdown",
    "markdown_code",
    "markdown_text",
    "page_text",
    "plot_label",
    "terminal_lines",
    "terminal_text",
]

#: Bidirectional overrides and isolates: they reorder what a reader sees ("Trojan Source").
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: C0 controls (ESC among them), DEL, C1 controls, bidi controls, the line and paragraph
#: separators and lone surrogates (which cannot even be encoded to print) -> visible escapes.
_CONTROLS = {
    code: _shown(code)
    for code in (
        *range(0x00, 0x20),
        *range(0x7F, 0xA0),
        *map(ord, _BIDI),
        0x2028,
        0x2029,
        *range(0xD800, 0xE000),
    )
}


def terminal_text(text: str) -> str:
    """``text`` as one line safe to print: every control character (ESC, ``\\r``, ``\\n``,
    DEL, C1, bidi overrides, a lone surrogate) shown as an escape such as ``\\x1b``; plain
    spaces and printable Unicode are kept. Idempotent: the result holds no control character."""
    return text.translate(_CONTROLS)


def terminal_lines(text: str) -> str:
    """:func:`terminal_text` for text of several lines (a message): its newlines are kept,
    every other control character is shown escaped."""
    return "\n".join(terminal_text(line) for line in text.split("\n"))


#: :data:`_CONTROLS` but for the newline and the tab, which a page shows as they are.
_PAGE_CONTROLS = {code: shown for code, shown in _CONTROLS.items() if chr(code) not in "\n\t"}


def page_text(text: str) -> str:
    """``text`` for an HTML page (Jinja's autoescape then escapes its markup): newlines and
    tabs are kept (a reply in ``<pre>`` keeps its lines), every other control character
    (NUL, ESC, ``\\r``, C1, bidi overrides and isolates, U+2028/9, a lone surrogate) is shown
    as an escape such as ``\\u202e``, so the page reads as the text was written."""
    return text.translate(_PAGE_CONTROLS)


# --------------------------------------------------------------------------- Markdown


class Markdown(str):
    """Text that already is Markdown: escaped by this module or written by our own code.
    A table escapes every cell that is a plain ``str`` and none that is ``Markdown``, so a
    name can only reach Markdown raw by being wrapped in this on purpose."""

    __slots__ = ()


#: Backslash-escaped wherever they stand: code spans, emphasis, strikethrough, table cells,
#: links and images (``[``, ``]``, ``!``), headings' closing ``#``, math (``$``), emoji
#: shortcodes and URL autolinks (``:``). CommonMark shows an escaped punctuation mark as itself.
_PUNCTUATION = frozenset("\\`*~|[]#!$:")
#: A ``<`` followed by one of these could open an HTML tag, comment or autolink.
_TAG_START = re.compile(r"[A-Za-z/!?]")
#: GitHub links ``www.`` even without a scheme.
_WWW = re.compile(r"(?i)(?<![\w.])(www)\.")


def _underscore_inert(text: str, index: int) -> bool:
    # CommonMark: an underscore between two alphanumerics can neither open nor close
    # emphasis, so ``flow_dynamics`` stays as it reads.
    return 0 < index < len(text) - 1 and text[index - 1].isalnum() and text[index + 1].isalnum()


def markdown_text(text: str) -> Markdown:
    """``text`` as inert inline Markdown (GitHub-flavoured), safe in a table cell, a heading
    or a sentence: no image, link, autolink, HTML tag, ``@mention``, emphasis, code span,
    math, emoji or table pipe survives, and no newline or other control character (those are
    shown as ``\\n``, ``\\x1b``, ...), and no ``#123`` issue reference. It renders as the
    text it was. Not for the start of a line: callers put it after their own words or inside
    a cell."""
    text = terminal_text(text)
    out: list[str] = []
    for index, char in enumerate(text):
        if char == "#" and text[index + 1 : index + 2].isdigit():
            # GitHub links #123 to an issue (and lists the mention there) after rendering;
            # a zero-width space after the # breaks the pattern, as for @ below.
            out.append("\\#&#8203;")
        elif char in _PUNCTUATION:
            out.append("\\" + char)
        elif char == "_":
            out.append("_" if _underscore_inert(text, index) else "\\_")
        elif char == "&":
            out.append("&amp;")
        elif char == "<":
            tag = _TAG_START.match(text, index + 1) is not None
            out.append("&lt;" if tag else "<")
        elif char == ">" and index == 0:
            out.append("&gt;")  # a blockquote, if a caller ever starts a line with it
        elif char == "@":
            # GitHub links @user, @org/team and a@b.c after rendering; a zero-width space
            # after the @ breaks the pattern and shows nothing (what Renovate's bot does).
            out.append("@&#8203;")
        else:
            out.append(char)
    return Markdown(_WWW.sub(r"\1\\.", "".join(out)))


def markdown_code(text: str, *, in_table: bool = False) -> Markdown:
    """``text`` as a Markdown code span (shown literally, monospaced: nothing inside a code
    span is a link, an image, HTML or a mention); control characters shown escaped; the
    fence is longer than any run of backticks inside; ``in_table`` escapes ``|``, which GFM
    splits cells on before it sees the span."""
    text = terminal_text(text)
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


# --------------------------------------------------------------------------- matplotlib

#: matplotlib settings under which labels are plain text: no mathtext (``$\\frac{$`` would
#: raise), no TeX (a user's matplotlibrc could turn it on and run LaTeX on our labels).
PLOT_RC: dict[str, object] = {"text.usetex": False, "text.parse_math": False}


def plot_label(text: str, limit: int | None = None) -> str:
    """``text`` for a chart's title, tick or legend, drawn under :data:`PLOT_RC`: one line,
    control characters shown escaped, ``$`` literal (mathtext is off, so no ``\\$``);
    shortened to ``limit`` characters with ``...`` when given."""
    text = terminal_text(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
