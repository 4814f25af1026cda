#!/usr/bin/env python3
"""Independent re-scorer for `ragreports eval --dump` files.

Re-implements the matching rules of spec/gold-format.md from scratch (standard library + PyYAML + OpenCC only; it
does NOT import ragreports), reads a suite folder and a dump, and prints the eval metrics JSON of
spec/cli-json.md. Use it to check the built-in scorer:

    ragreports eval eval/suites/dev --dump /tmp/pred.json --json > /tmp/eval.json
    python bench/rescore.py eval/suites/dev /tmp/pred.json

Grounding needs the normalised report texts: they are read from the dump's `text` key of each report entry
(written by ragreports); without them `grounding.verified` is null.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
import unicodedata
from collections import deque
from pathlib import Path

import opencc
import yaml

# ---------------------------------------------------------------------------------------------- normalisation
_CC = opencc.OpenCC("t2s")
_TONED = {"a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù", "v": "ǖǘǚǜü", "n": "ńňǹ", "m": "ḿ"}
_UNTONE = {c: plain for plain, cs in _TONED.items() for c in cs}
_INITIALS = ["zh", "ch", "sh"] + list("bpmfdtnlgkhjqxrzcsyw") + [""]
_FINALS = {
    "iang", "iong", "uang", "ang", "eng", "ing", "ong", "ian", "iao", "uai", "uan", "van", "ai", "ei", "ao",
    "ou", "an", "en", "er", "in", "ia", "ie", "iu", "ua", "uo", "ui", "un", "ve", "vn", "ue", "a", "e", "i",
    "o", "u", "v", "n", "m", "ng",
}
_ALL_TONED = "".join(_TONED.values())
_RUBY = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])[(（]\s*([a-z" + _ALL_TONED + r"]{1,7})\s*[)）]")


def _syllable(s: str) -> bool:
    plain = "".join(_UNTONE.get(c, c) for c in s.lower())
    return any(plain.startswith(i) and plain[len(i):] in _FINALS for i in _INITIALS)


def _drop_ruby(text: str) -> str:
    return _RUBY.sub(lambda m: "" if _syllable(m.group(1)) else m.group(0), text)


def norm(text: str) -> str:
    """NFKC, pinyin ruby removed, whitespace and punctuation removed, Traditional -> Simplified."""
    text = _drop_ruby(text or "")
    kept = "".join(c for c in unicodedata.normalize("NFKC", text)
                   if not c.isspace() and not unicodedata.category(c).startswith("P"))
    out = _CC.convert(kept)
    if len(out) != len(kept):
        out = "".join(x if len(x := _CC.convert(c)) == 1 else c for c in kept)
    return out


def norm_unit(u: str) -> str:
    return norm(u) or "".join(unicodedata.normalize("NFKC", u or "").split())


def longest_run(a: str, b: str) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def overlap(a: str, b: str) -> bool:
    x, y = norm(a), norm(b)
    if not x or not y:
        return False
    if x in y or y in x:
        return True
    return longest_run(x, y) >= 0.6 * min(len(x), len(y))


def inside(passage: str, quote: str) -> bool:
    q = norm(quote)
    return bool(q) and q in norm(passage)


def same_value(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)


def frac(n: int, d: int, empty: float = 1.0) -> float:
    return n / d if d else empty


# ---------------------------------------------------------------------------------------------- numbers
_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_SMALL = {"十": 10, "百": 100, "千": 1000}
_SCALES = [("万亿", 10 ** 12), ("千亿", 10 ** 11), ("百亿", 10 ** 10), ("千万", 10 ** 7), ("百万", 10 ** 6),
           ("亿", 10 ** 8), ("万", 10 ** 4), ("千", 10 ** 3), ("百", 100)]
_SCALES.sort(key=lambda p: -len(p[0]))
_INFIX = "余多来"
_LEAD = sorted(["将近", "接近", "大约", "约为", "约", "近", "超过", "超", "逾", "突破", "不少于", "不低于",
                "至少", "上", "共计", "合计", "总计", "累计", "共", "达", "计", "为"], key=len, reverse=True)
_TRAIL = ["以上", "左右", "上下", "有余"]
_NUMERAL = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[" + "".join(_CN_DIGIT) + "十百千万亿]+")


def chinese_value(s: str):
    if len(s) > 1 and all(c in _CN_DIGIT for c in s):
        return None if "两" in s else int("".join(str(_CN_DIGIT[c]) for c in s))
    yi_part = wan_part = small = 0
    digit = None
    for c in s:
        if c in _CN_DIGIT:
            if digit not in (None, 0):
                return None
            digit = _CN_DIGIT[c]
        elif c in _CN_SMALL:
            small += (1 if digit is None else digit) * _CN_SMALL[c]
            digit = None
        elif c == "万":
            wan_part = ((wan_part + small + (digit or 0)) or 1) * 10 ** 4
            small, digit = 0, None
        elif c == "亿":
            yi_part = ((yi_part + wan_part + small + (digit or 0)) or 1) * 10 ** 8
            wan_part, small, digit = 0, 0, None
        else:
            return None
    return yi_part + wan_part + small + (digit or 0)


def numeral_value(s: str):
    if s[0].isdigit():
        return float(s.replace(",", ""))
    v = chinese_value(s)
    return None if v is None else float(v)


def numbers_in(text: str):
    """(value after scale, start, end after scale and 余/多 markers) for each number in text."""
    found = []
    for m in _NUMERAL.finditer(text):
        v = numeral_value(m.group(0))
        if v is None:
            continue
        p = m.end()
        if text[p:p + 1] and text[p] in _INFIX:
            p += 1
        for word, mult in _SCALES:
            if text.startswith(word, p):
                v *= mult
                p += len(word)
                if text[p:p + 1] and text[p] in _INFIX:
                    p += 1
                break
        found.append((v, m.start(), p))
    return found


def number_answer(ans: str):
    s = "".join(unicodedata.normalize("NFKC", ans).split())
    for w in _LEAD:
        if s.startswith(w):
            s = s[len(w):]
            break
    nums = numbers_in(s)
    if not nums or nums[0][1] != 0:
        return None
    value, _, p = nums[0]
    unit = s[p:]
    for w in _TRAIL:
        if unit.endswith(w) and len(unit) > len(w):
            unit = unit[:-len(w)]
            break
    if not unit or len(unit) > 4 or any(c.isdigit() or c in _CN_DIGIT for c in unit):
        return None
    return value, norm_unit(unit)


def answer_ok(answer: str, gold: str) -> bool:
    head = unicodedata.normalize("NFKC", (answer or "")[:80])
    na = number_answer(gold)
    if na is None:
        g = norm(gold)
        return bool(g) and g in norm(head)
    value, unit = na
    for v, _, end in numbers_in(head):
        tail = head[end:end + 12]
        t = norm(tail) if norm(unit) else "".join(_CC.convert(tail).split())
        if same_value(v, value) and t.startswith(unit):
            return True
    return False


# ---------------------------------------------------------------------------------------------- meta
_AREA_RE = re.compile(r"^[^局厅委办处部署司室站院\s\d]{1,10}?"
                      r"(?:特别行政区|自治区|自治州|自治县|自治旗|地区|省|市|州|盟|区|县|旗)")


def area_len(s: str) -> int:
    m = _AREA_RE.match(s)
    if m is None:
        return 0
    n = m.end()
    if s[n - 1] == "州" and not s[:n].endswith("自治州") and n < len(s) and s[n] in "省市区县盟":
        n += 1
    return n


def shorter_forms(name: str) -> set[str]:
    forms, rest = set(), name
    while (n := area_len(rest)) and n < len(rest):
        rest = rest[n:]
        if not area_len(rest):
            break
        forms.add(rest)
    return forms


def as_date(v):
    if isinstance(v, (datetime.date, datetime.datetime)):
        return (v.date() if isinstance(v, datetime.datetime) else v).isoformat()
    if isinstance(v, str) and v.strip():
        try:
            return datetime.date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            return v.strip()
    return None


def meta_ok(field: str, gold, pred) -> bool:
    empty = pred is None or (isinstance(pred, str) and not pred.strip())
    if gold is None:
        return empty
    if empty:
        return False
    accepted = gold if isinstance(gold, list) else [gold]
    if field == "year":
        try:
            return int(str(pred).strip()) in {int(a) for a in accepted}
        except ValueError:
            return False
    if field == "published":
        return as_date(pred) in {as_date(a) for a in accepted}
    p = norm(str(pred))
    for a in accepted:
        g = norm(str(a))
        if g and p and (g == p or g in shorter_forms(p) or p in shorter_forms(g)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- matching
def max_matching(n_left: int, n_right: int, edges: dict[int, list[int]]) -> int:
    """Size of a maximum bipartite matching (BFS augmenting paths)."""
    match_r = [-1] * n_right
    match_l = [-1] * n_left
    size = 0
    for start in range(n_left):
        parent = {}
        queue = deque([start])
        seen_l = {start}
        end = -1
        while queue and end < 0:
            u = queue.popleft()
            for r in edges.get(u, []):
                if r in parent:
                    continue
                parent[r] = u
                if match_r[r] < 0:
                    end = r
                    break
                nxt = match_r[r]
                if nxt not in seen_l:
                    seen_l.add(nxt)
                    queue.append(nxt)
        if end < 0:
            continue
        r = end
        while r >= 0:
            u = parent[r]
            prev = match_l[u]
            match_l[u], match_r[r] = r, u
            r = prev
        size += 1
    return size


def good(text, quote, start, end) -> bool:
    return text is not None and bool(quote) and 0 <= start <= end <= len(text) and text[start:end] == quote


# ---------------------------------------------------------------------------------------------- scoring
SECTIONS = ["measures", "leadership", "shortcomings", "next_year", "other"]


def load_gold(suite: Path) -> list[dict]:
    golds = []
    for p in sorted((suite / "gold").iterdir()):
        if p.suffix.lower() in (".yaml", ".yml") and not p.name.startswith("."):
            golds.append(yaml.safe_load(p.read_text(encoding="utf-8-sig")))
    return sorted(golds, key=lambda g: g["report"])


def rescore(suite: Path, dump: dict) -> dict:
    golds = load_gold(suite)
    preds = {r["report"]: r for r in dump.get("reports", [])}
    texts = {r["doc_id"]: r["text"] for r in dump.get("reports", []) if r.get("doc_id") and "text" in r}
    n_gold = n_pred = n_match = 0
    meta_hits = dict.fromkeys(("issuer", "region", "year", "published"), 0)
    n_q = q_ok = q_refused = hit1 = hit5 = 0
    n_unans = unans_refused = n_answerable = 0
    n_pts = pts_ok = 0
    checked = verified = 0
    for g in golds:
        rep = preds.get(g["report"], {})
        doc_id = rep.get("doc_id")
        text = texts.get(doc_id) if doc_id else None
        gfacts, pfacts = g.get("facts"), rep.get("facts") or []
        if gfacts is not None:  # facts: null or no key = not annotated, left out of fact scoring
            edges = {i: [j for j, p in enumerate(pfacts)
                         if same_value(gf["value"], p["value"]) and norm_unit(str(gf["unit"])) == norm_unit(p["unit"])
                         and overlap(p["quote"], str(gf["quote"]))] for i, gf in enumerate(gfacts)}
            n_gold += len(gfacts)
            n_pred += len(pfacts)
            n_match += max_matching(len(gfacts), len(pfacts), edges)
        for f in meta_hits:
            meta_hits[f] += meta_ok(f, (g.get("meta") or {}).get(f), (rep.get("meta") or {}).get(f))
        asked: dict[str, list] = {}
        for q in dump.get("questions", []):
            if q.get("report") == g["report"]:
                asked.setdefault(q["question"].strip(), []).append(q)
        for gq in g.get("questions") or []:
            n_q += 1
            unanswerable = gq.get("answer") is None
            n_unans += unanswerable
            n_answerable += not unanswerable
            lst = asked.get(str(gq["question"]).strip())
            q = lst.pop(0) if lst else None
            if q is None:  # no prediction counts as a refusal
                q_refused += 1
                unans_refused += unanswerable
                q_ok += unanswerable
                continue
            q_refused += bool(q.get("refused"))
            for c in q.get("citations", []):
                checked += 1
                verified += good(texts.get(c["doc_id"]), c["quote"], c["start"], c["end"])
            if unanswerable:  # right only when refused; not a retrieval target
                unans_refused += bool(q.get("refused"))
                q_ok += bool(q.get("refused"))
                continue
            said = not q.get("refused") and answer_ok(q.get("answer", ""), str(gq["answer"]))
            cited = doc_id is not None and any(c["doc_id"] == doc_id and inside(c["quote"], str(gq["quote"]))
                                               for c in q.get("citations", []))
            q_ok += said and cited
            top = q.get("retrieved", [])
            hits = [doc_id is not None and r["doc_id"] == doc_id and inside(r["text"], str(gq["quote"]))
                    for r in top[:5]]
            hit1 += any(hits[:1])
            hit5 += any(hits)
        summary = rep.get("summary")
        secs = g.get("sections") or {}
        for name in SECTIONS:
            for point in secs.get(name) or []:
                n_pts += 1
                items = (summary or {}).get(name) or []
                pts_ok += any(overlap(ev["quote"], str(point)) for it in items for ev in it.get("evidence", []))
        facts_to_check = list(pfacts) + list((summary or {}).get("key_figures") or [])
        for f in facts_to_check:
            checked += 1
            verified += good(text, f["quote"], f.get("start", -1), f.get("end", -1))
        for name in SECTIONS if summary else []:
            for it in summary.get(name) or []:
                checked += 1
                ev = it.get("evidence", [])
                verified += bool(ev) and all(good(text, e["quote"], e["start"], e["end"]) for e in ev)
    p = frac(n_match, n_pred, 1.0 if n_gold == 0 else 0.0)
    r = frac(n_match, n_gold)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    n = len(golds)
    return {
        "suite": suite.name,
        "reports": n,
        "facts": {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "gold": n_gold,
                  "predicted": n_pred, "matched": n_match},
        "meta": {"accuracy": round(frac(sum(meta_hits.values()), 4 * n), 4),
                 "fields": {f: round(frac(v, n), 4) for f, v in meta_hits.items()}},
        "qa": {"accuracy": round(frac(q_ok, n_q), 4), "questions": n_q, "refused": q_refused,
               "refusal_precision": round(frac(unans_refused, q_refused), 4),
               "refusal_recall": round(frac(unans_refused, n_unans), 4)},
        "retrieval": {"recall_at_1": round(frac(hit1, n_answerable), 4),
                      "recall_at_5": round(frac(hit5, n_answerable), 4)},
        "grounding": {"verified": round(frac(verified, checked), 4) if texts else None},
        "sections": {"coverage": round(frac(pts_ok, n_pts), 4)},
        "passed": None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", type=Path, help="suite folder (reports/ + gold/)")
    ap.add_argument("dump", type=Path, help="JSON written by `ragreports eval SUITE --dump PRED.json`")
    args = ap.parse_args(argv)
    dump = json.loads(args.dump.read_text(encoding="utf-8"))
    print(json.dumps(rescore(args.suite, dump), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
