"""Text that isn't text: mojibake runs, repaired where the bytes allow, otherwise marked unreadable.

Web pages copied through a lossy conversion carry two kinds of garbage that a decoder cannot see (every character is
valid):

- **shifted GBK**: one byte of a double-byte character was lost (often replaced by ``?``), so every following
  byte pairs with the wrong neighbour until an ASCII-range trail byte resynchronises the stream, which then shows as
  a stray Latin letter between hanzi: ``专家?guī)旃芾磙k法`` is ``…库管理辦法`` read one byte off. Re-encoding the
  run and dropping its first byte gives back every character but the one whose byte was lost.
- **UTF-8 read as GBK**: ``绉戞妧灞€`` is 科技局 in UTF-8 bytes decoded as GBK; re-encoding and decoding as UTF-8
  gives it back.

:func:`repair_mojibake` repairs a run only when the result is entirely ordinary text (common hanzi and report
punctuation) and the run itself is not (rare characters, box-drawing symbols); it never touches a digit (digits are
never GBK trail bytes). What cannot be repaired — lost characters (``?`` between hanzi), ruby left without its
character (``?qū)``), short runs caught between lost characters (``??萍季?``), rare-character runs that no
re-reading explains — is found by :func:`unreadable_spans`, so answers and briefs never quote it.

The character tables come from the code tables themselves (GB2312 level 1 and Big5 常用字), not from any report.
"""

from __future__ import annotations

import contextlib
import functools
import re

# Non-hanzi characters that real reports use and wrong decodes rarely produce: CJK and full-width punctuation,
# full-width digits and letters, list markers, units, pinyin tone vowels.
PLAUSIBLE_OTHER = frozenset(
    "，。、；：？！“”‘’《》〈〉（）【】〔〕「」『』…—·－％．～　"
    + "".join(chr(c) for c in range(0xFF01, 0xFF5F))
    + "".join(chr(c) for c in range(0x2460, 0x2474))  # ①..⑳
    + "".join(chr(c) for c in range(0x2160, 0x216C))  # Ⅰ..Ⅻ
    + "\u00a0×÷±°℃‰№■□●○◆◇★☆→"
    + "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ"
)
_BAD_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CJK = "\u3400-\u9fff"
_PINYIN = "a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ"

# Lost characters: U+FFFD, "?" between hanzi (never after a question particle), ruby left without its character,
# and a short hanzi run caught between two lost characters (its bytes are shifted: it reads as words but means
# nothing).
_UNREADABLE = re.compile(
    "\ufffd+"  # what a decoder put where it lost bytes
    rf"|\?+[{_CJK}]{{1,4}}\?+(?=[{_CJK}，,。])"
    rf"|\?[{_PINYIN}]{{1,6}}\)"
    rf"|(?<=[{_CJK}，,、])(?<![吗呢么吧啊])\?+!?(?=[{_CJK}《“])"
)


@functools.lru_cache(maxsize=1)
def common_hanzi() -> frozenset[str]:
    """Frequent hanzi from the code tables themselves: GB2312 level 1 (3,755 common Simplified characters)
    and Big5 常用字 (5,401 common Traditional characters)."""
    chars: set[str] = set()
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            with contextlib.suppress(UnicodeDecodeError):
                chars.add(bytes((hi, lo)).decode("gb2312"))
    for hi in range(0xA4, 0xC7):
        for lo in [*range(0x40, 0x7F), *range(0xA1, 0xFF)]:
            if (hi, lo) >= (0xC6, 0x7F):
                break
            with contextlib.suppress(UnicodeDecodeError):
                chars.add(bytes((hi, lo)).decode("big5"))
    return frozenset(chars)


@functools.lru_cache(maxsize=1)
def _implausible_re() -> re.Pattern[str]:
    """One character that is not ordinary report text (a fast first look before the byte-level work)."""
    chars = sorted(common_hanzi() | PLAUSIBLE_OTHER)
    return re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]|[^\x00-\x7f" + "".join(re.escape(c) for c in chars) + "]")


def plausible(ch: str) -> bool:
    """An ordinary character of a report: ASCII (but control characters), a common hanzi or report punctuation."""
    if ch < "\x80":
        return not _BAD_CONTROL.match(ch)
    return ch in common_hanzi() or ch in PLAUSIBLE_OTHER


def plausibility(text: str) -> float:
    """Share of non-ASCII characters that are common hanzi (GB2312 level 1 or Big5 常用字) or usual report
    symbols (control characters count against). A correct decode of Chinese text scores near 1; text decoded
    with the wrong legacy codec scores far lower."""
    good = total = 0
    for ch in text:
        if ch < "\x80" and not _BAD_CONTROL.match(ch):
            continue
        total += 1
        if plausible(ch):
            good += 1
    return good / total if total else 1.0


def _double_byte(ch: str) -> bytes | None:
    """The GBK bytes of a double-byte character, else None."""
    try:
        b = ch.encode("gbk")
    except UnicodeEncodeError:
        return None
    return b if len(b) == 2 else None


def _runs(text: str):
    """Maximal runs of GBK double-byte characters that hold at least one odd character: (start, end, bytes).
    Only the neighbourhood of odd characters (found by one regex scan) is looked at byte by byte."""
    done = 0
    for m in _implausible_re().finditer(text):
        if m.start() < done or _double_byte(text[m.start()]) is None:
            continue
        i = m.start()
        while i > 0 and _double_byte(text[i - 1]) is not None:
            i -= 1
        j, parts = i, []
        while j < len(text) and (b := _double_byte(text[j])) is not None:
            parts.append(b)
            j += 1
        done = j
        yield i, j, b"".join(parts)


def _implausible(s: str) -> int:
    return sum(1 for ch in s if not plausible(ch))


def _shifted(run: str, data: bytes, tail: str | None, glued: bool) -> str | None:
    """The run read one byte later (its lost first byte dropped), when that is plainly better text."""
    if tail is None or not glued:
        return None  # without a resynchronising ASCII byte there is no telling where the shift ends
    bad = _implausible(run)
    if bad == 0 or bad * 3 < len(run):
        return None
    try:
        fixed = (data + tail.encode("ascii"))[1:].decode("gbk")
    except UnicodeDecodeError:
        return None
    return fixed if fixed and all(plausible(c) and c >= "\x80" for c in fixed) else None


def _utf8_as_gbk(run: str, data: bytes) -> tuple[int, str] | None:
    """The run's bytes read as UTF-8 (they were UTF-8 decoded as GBK), when that is plainly better text: returns
    where the garbled part of the run starts and its repair. Valid UTF-8 of at least two hanzi out of a run that
    holds odd characters does not happen by chance; a last character cut short (its final bytes lost) is dropped."""
    first_bad = next((i for i, ch in enumerate(run) if not plausible(ch)), None)
    if first_bad is None:
        return None
    for start in range(first_bad + 1):
        part = data[2 * start:]
        for cut in (0, 1, 2):
            try:
                fixed = (part[:-cut] if cut else part).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(fixed) >= 2 and all(plausible(c) and c >= "\x80" for c in fixed):
                return start, fixed
            break
    return None


def repair_mojibake(text: str) -> str:
    """``text`` with the mojibake runs that the bytes allow repaired (see the module docstring). Pure; a text
    without mojibake comes back unchanged; repairing twice changes nothing more."""
    if not _implausible_re().search(text):
        return text
    out: list[str] = []
    pos = 0
    for s, e, data in _runs(text):
        run = text[s:e]
        if not _implausible(run):
            continue
        tail = text[e] if e < len(text) and "\x40" <= text[e] <= "\x7e" and text[e].isalpha() else None
        glued = tail is not None and e + 1 < len(text) and _double_byte(text[e + 1]) is not None
        fixed = _shifted(run, data, tail, glued)
        if fixed is not None:
            out += [text[pos:s], fixed]
            pos = e + 1  # the tail letter was the last character's trail byte
            continue
        found = _utf8_as_gbk(run, data)
        if found is not None:
            start, fixed = found
            out += [text[pos:s + start], fixed]
            pos = e
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def unreadable_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Spans of ``text`` that are not readable text (lost characters, broken ruby, unrepaired mojibake runs)."""
    spans = [m.span() for m in _UNREADABLE.finditer(text)]
    for s, e, _ in _runs(text):
        i = s
        while i < e:  # two or more rare/odd characters in a row, or one glued to a stray Latin letter
            if plausible(text[i]):
                i += 1
                continue
            j = i
            while j < e and not plausible(text[j]):
                j += 1
            glued = j == e and j < len(text) and text[j].isascii() and text[j].isalpha()
            if j - i >= 2 or glued:
                spans.append((i, j + (1 if glued else 0)))
            i = j
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return tuple(merged)
