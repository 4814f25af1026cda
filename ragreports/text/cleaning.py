"""Cleaning: decoded report text -> the normalised text that every offset in the system refers to.

``clean(text)`` is a pure function. In order, one pass:

1. line breaks unified, zero-width and control characters dropped, mojibake repaired where the bytes allow
   (:func:`ragreports.text.mojibake.repair_mojibake`: shifted GBK, UTF-8 read as GBK);
2. HTML markup flattened: comments, script/style, tags (block tags become line breaks), tag remnants whose
   ``<`` was eaten by a lossy conversion (``?/span>``), character entities decoded (``&nbsp;`` ``&amp;``);
3. pinyin ruby removed (``學(xué)習(xí)`` -> ``學習``; real parentheses such as ``(2021-2025年)`` stay);
4. Traditional -> Simplified, length-preserving;
5. every space character (U+3000, NBSP, tab ...) becomes a plain space;
6. page chrome removed line by line with the patterns of ``ragreports/data/chrome_patterns.yaml``, then
   the "?" that a lossy GBK conversion left for unencodable spaces (lines of "?", "????" runs next to spaces);
7. doubled punctuation collapsed (``,,`` -> ``,``; ``,、`` -> ``、``; ``。。`` -> ``。``);
8. runs of spaces collapsed, lines stripped, runs of blank lines reduced to one blank line.

Passes repeat until the text no longer changes, so ``clean(clean(x)) == clean(x)``. Cleaning never edits a
digit: numbers and dates only disappear together with a whole chrome element (a view counter, an ICP number).
Mojibake the bytes cannot explain (``??萍季``) is left as it is — guessing the lost characters would invent text —
and :func:`ragreports.text.mojibake.unreadable_spans` marks it so nothing quotes it. :func:`has_report_text` tells a
report from a page of chrome that cleaning left a few labels of.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules
from ragreports.text.mojibake import repair_mojibake
from ragreports.text.normalize import pinyin_spans, remove_spans, to_simplified_aligned

_MAX_PASSES = 4

# HTML elements whose boundaries are line breaks when a page is flattened to text (shared with loaders).
BLOCK_TAGS = frozenset(
    [
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot", "thead",
        "title", "tr", "ul",
    ]
)
_INLINE_TAGS = [
    "a", "abbr", "b", "bdi", "bdo", "big", "button", "cite", "code", "del", "dfn", "em", "font", "i", "img",
    "input", "ins", "kbd", "label", "mark", "nobr", "q", "s", "samp", "select", "small", "span", "strike",
    "strong", "sub", "sup", "td", "th", "time", "tt", "u", "var", "wbr", "option", "textarea", "iframe", "head",
    "meta", "link", "script", "style", "noscript", "base", "col", "colgroup",
]
_TAG_NAMES = "|".join(sorted({*BLOCK_TAGS, *_INLINE_TAGS}, key=len, reverse=True))
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_SCRIPT = re.compile(r"<(script|style|noscript)\b[^<>]*>.*?</\1\s*>", re.S | re.I)
# A known tag, or a namespaced Word tag (<o:p>, <st1:chsdate ...>); attributes may not contain < or >.
_TAG = re.compile(rf"</?(?:(?:{_TAG_NAMES})|[a-zA-Z]+:[a-zA-Z]+)\b(?:\s[^<>]*)?/?>", re.I)
_BLOCK_TAG = re.compile(rf"</?(?:{'|'.join(sorted(BLOCK_TAGS, key=len, reverse=True))})\b", re.I)
# A closing tag whose "<" was swallowed by a lossy re-encoding: "科技局?/span>".
_TAG_REMNANT = re.compile(rf"(?<![<A-Za-z0-9])/(?:{_TAG_NAMES})\s*>", re.I)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});|&nbsp(?![a-zA-Z0-9;])")

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_SPACES = re.compile("[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_SPACE_RUN = re.compile(" {2,}")
_BLANK_RUN = re.compile(r"\n{3,}")

# Doubled punctuation from sloppy conversions: ",," "，，" "。。" "、、"; a comma before another mark: ",、" ",。".
_DOUBLED = re.compile(r"([,，、。;；])\1+")
_MIXED_COMMAS = re.compile(r"[,，]{2,}")
_COMMA_BEFORE = re.compile(r"[,，]+(?=[、。;；])")

# Tidying on a line from which chrome was removed.
_SEPARATOR = r"[|｜]"
_EDGE_SEPARATORS = re.compile(rf"^[ ]*(?:{_SEPARATOR}[ ]*)+|(?:[ ]*{_SEPARATOR})+[ ]*$")
_REPEATED_SEPARATORS = re.compile(rf"{_SEPARATOR}(?:[ ]*{_SEPARATOR})+")
_EMPTY_BRACKETS = re.compile(r"【 *】|\[ *\]")

# Question marks a lossy GBK conversion left for spaces it could not encode (NBSP): a line of nothing but "?",
# or a run of two or more "?" touching a space or starting a line. A "?" after words ("吗?") is left alone, and
# so is mojibake inside words ("??萍季"): guessing what it stood for would invent text.
_LOST_SPACE_LINE = re.compile(r"^[? ]*\?[? ]*$", re.M)
_LOST_SPACE_RUN = re.compile(r"(?:(?<= )|^)\?{2,}|\?{2,}(?= )", re.M)

_TONE_MARKS = frozenset("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ")


class _PatternEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    note: str
    continued_by: str | None = None


class ChromeFile(BaseModel):
    """``data/chrome_patterns.yaml``: fragments removed inside a line, and whole lines dropped."""

    model_config = ConfigDict(extra="forbid")
    fragments: list[_PatternEntry]
    lines: list[_PatternEntry]


@dataclass(frozen=True)
class _LineRule:
    pattern: re.Pattern[str]
    continued_by: re.Pattern[str] | None
    note: str


@dataclass(frozen=True)
class ChromeRules:
    """The chrome patterns of ``data/chrome_patterns.yaml``, compiled."""

    fragments: tuple[re.Pattern[str], ...]
    lines: tuple[_LineRule, ...]


@functools.lru_cache(maxsize=1)
def chrome_rules() -> ChromeRules:
    """Load and compile the chrome patterns once."""
    raw = load_rules("chrome_patterns", ChromeFile)
    fragments = tuple(re.compile(item.pattern) for item in raw.fragments)
    lines = tuple(
        _LineRule(re.compile(item.pattern), re.compile(item.continued_by) if item.continued_by else None, item.note)
        for item in raw.lines
    )
    return ChromeRules(fragments, lines)


def clean(text: str) -> str:
    """Normalise decoded report text (see the module docstring). Pure and idempotent."""
    out = text
    for _ in range(_MAX_PASSES):
        new = _clean_once(out)
        if new == out:
            break
        out = new
    return out


def _clean_once(text: str) -> str:
    text = _LINE_BREAKS.sub("\n", text)
    text = _ZERO_WIDTH.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = repair_mojibake(text)
    text = strip_markup(text)
    text = strip_ruby(text)
    text = to_simplified_aligned(text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(remove_chrome(text.split("\n")))
    text = _LOST_SPACE_RUN.sub(" ", _LOST_SPACE_LINE.sub("", text))
    text = collapse_punctuation(text)
    return normalise_whitespace(text)


def strip_markup(text: str) -> str:
    """Remove HTML comments, scripts, tags and tag remnants; decode character entities."""
    if "<" in text or ">" in text:
        text = _COMMENT.sub("", text)
        text = _SCRIPT.sub("", text)
        text = _TAG.sub(lambda m: "\n" if _BLOCK_TAG.match(m.group(0)) else "", text)
        text = _TAG_REMNANT.sub("", text)
    if "&" in text:
        text = _ENTITY.sub(_decode_entity, text)
    return text


def _decode_entity(m: re.Match[str]) -> str:
    s = m.group(0)
    if s == "&nbsp":
        return "\u00a0"
    decoded = html.unescape(s)
    # Never turn an entity into a line break or a control character: a stray "&#10;" is not structure.
    return " " if decoded in ("\n", "\r", "\t") or _CONTROL.fullmatch(decoded) else decoded


def strip_ruby(text: str) -> str:
    """Remove pinyin ruby annotations. A toneless ``(ai)`` after a character is ruby only when the text
    carries tone-marked ruby elsewhere or the annotation touches another one (``學(xué)習(xí)``); otherwise it is
    a real parenthesis and stays."""
    spans = pinyin_spans(text)
    if not spans:
        return text
    toned = [any(c in _TONE_MARKS for c in text[s:e]) for s, e in spans]
    document_has_ruby = sum(toned) >= 2
    keep_out: list[tuple[int, int]] = []
    for i, (s, e) in enumerate(spans):
        chained = (i > 0 and spans[i - 1][1] == s - 1) or (i + 1 < len(spans) and spans[i + 1][0] == e + 1)
        if toned[i] or document_has_ruby or chained:
            keep_out.append((s, e))
    return remove_spans(text, keep_out)


def remove_chrome(lines: list[str]) -> list[str]:
    """Drop chrome lines and chrome fragments (patterns from ``data/chrome_patterns.yaml``)."""
    rules = chrome_rules()
    out: list[str] = []
    continuation: re.Pattern[str] | None = None
    for line in lines:
        stripped = _SPACE_RUN.sub(" ", line).strip(" ")
        if continuation is not None and stripped and continuation.fullmatch(stripped):
            continue
        continuation = None
        if stripped:
            rule = _matching_line_rule(stripped, rules)
            if rule is not None:
                continuation = rule.continued_by
                continue
            cut = _remove_fragments(stripped, rules)
            if cut != stripped:
                cut = _tidy(cut)
                if not cut or _matching_line_rule(cut, rules) is not None:
                    continue
            line = cut
        out.append(line)
    return out


def _matching_line_rule(line: str, rules: ChromeRules) -> _LineRule | None:
    for rule in rules.lines:
        if rule.pattern.fullmatch(line):
            return rule
    return None


def _remove_fragments(line: str, rules: ChromeRules) -> str:
    for pattern in rules.fragments:
        line = pattern.sub(" ", line)
    return line


def _tidy(line: str) -> str:
    line = _EMPTY_BRACKETS.sub(" ", line)
    line = _REPEATED_SEPARATORS.sub("|", line)
    line = _EDGE_SEPARATORS.sub("", line)
    return line.strip(" ")


def collapse_punctuation(text: str) -> str:
    """``,,`` -> ``,``; ``，，`` -> ``，``; ``,、`` -> ``、``; ``。。`` -> ``。``."""
    text = _MIXED_COMMAS.sub(lambda m: m.group(0)[0], text)
    text = _DOUBLED.sub(r"\1", text)
    return _COMMA_BEFORE.sub("", text)


def normalise_whitespace(text: str) -> str:
    """Collapse spaces within lines, strip every line, keep at most one blank line between paragraphs."""
    lines = [_SPACE_RUN.sub(" ", line).strip(" ") for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


_HANZI = re.compile("[\u3400-\u9fff]")
_SENTENCE = re.compile(r"[^。！？；!?;\n]*[。！？；!?;]")
REPORT_SENTENCE_HANZI = 8  # a sentence with this many hanzi is report text
REPORT_LINE_HANZI = 40  # so is a line with this many, punctuation or not


def has_report_text(text: str) -> bool:
    """True when cleaned ``text`` holds report prose: a sentence of at least 8 hanzi, or a line of at least 40.
    What cleaning leaves of a page that was only chrome (labels, a date line, an address) has neither."""
    for line in text.split("\n"):
        if len(_HANZI.findall(line)) >= REPORT_LINE_HANZI:
            return True
        if any(len(_HANZI.findall(m.group(0))) >= REPORT_SENTENCE_HANZI for m in _SENTENCE.finditer(line)):
            return True
    return False
