"""Bench: fact extraction and metadata against a gold suite, next to a naive regex baseline.

    /tmp/venv/bin/python bench/facts.py [SUITE] [--misses]

For each report in SUITE/reports (default eval/suites/dev): clean it, run ``extract_facts`` and ``extract_meta``,
and score against SUITE/gold with the spec's matching rules (spec/gold-format.md): a predicted fact matches a gold
fact when values are equal (rel tol 1e-6), units equal after normalisation, and quotes overlap; each gold fact
matches at most one prediction; micro P/R/F1 over the suite; meta accuracy per field.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ragreports.extract.facts import extract_facts
from ragreports.extract.metadata import extract_meta
from ragreports.text.cleaning import clean
from ragreports.text.normalize import match_key, quotes_overlap

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "eval" / "suites" / "dev"
META_FIELDS = ("issuer", "region", "year", "published")


@dataclass
class Pred:
    value: float
    unit: str
    quote: str
    approx: bool = False


# ---------------------------------------------------------------------------------------------- baseline

_BASE_UNITS = ["人次", "场次", "批次", "学时", "次", "项", "件", "人", "家", "份", "元", "%", "个", "名", "户", "条",
               "期", "位"]
_BASE_RE = re.compile(r"(\d+(?:\.\d+)?)(万|亿)?(余|多)?(" + "|".join(_BASE_UNITS) + ")")


def baseline_facts(text: str) -> list[Pred]:
    """Naive extractor: one regex number+unit over the text, quote = the match with a few characters around."""
    out = []
    for m in _BASE_RE.finditer(text):
        v = float(m.group(1)) * {"万": 1e4, "亿": 1e8, None: 1}[m.group(2)]
        s, e = max(0, m.start() - 6), min(len(text), m.end() + 4)
        out.append(Pred(round(v, 6), m.group(4), text[s:e], bool(m.group(3))))
    return out


# ---------------------------------------------------------------------------------------------- matching


def unit_key(unit: str) -> str:
    """Unit comparison form; symbol units (%, ‰) are punctuation to match_key, so they keep their symbol."""
    return match_key(unit) or "".join(unicodedata.normalize("NFKC", unit).split())


def fact_matches(p: Pred, g: dict) -> bool:
    gv = float(g["value"])
    return (math.isclose(p.value, gv, rel_tol=1e-6, abs_tol=1e-9)
            and unit_key(str(p.unit)) == unit_key(str(g["unit"]))
            and quotes_overlap(p.quote, str(g["quote"])))


def match_facts(preds: list[Pred], gold: list[dict]) -> tuple[int, list[dict], list[Pred]]:
    """Greedy: each gold fact (in order) takes the first unused matching prediction."""
    used = [False] * len(preds)
    missed = []
    tp = 0
    for g in gold:
        for i, p in enumerate(preds):
            if not used[i] and fact_matches(p, g):
                used[i] = True
                tp += 1
                break
        else:
            missed.append(g)
    spurious = [p for i, p in enumerate(preds) if not used[i]]
    return tp, missed, spurious


_AREA = re.compile(r"^[\u3400-\u9fff]{1,7}?(?:特别行政区|自治区|自治州|自治县|省|市|州|盟|地区|区|县|旗)")


def _area_variants(s: str) -> set[str]:
    """``s`` with its leading higher-level areas removed one by one, while a place name remains."""
    out = {s}
    cur = s
    while True:
        m = _AREA.match(cur)
        if not m:
            break
        rest = cur[m.end():]
        if not rest or not _AREA.match(rest):
            break
        out.add(rest)
        cur = rest
    return out


def meta_matches(field: str, pred: object, gold: object) -> bool:
    golds = gold if isinstance(gold, list) else [gold]
    for g in golds:
        if g is None or pred is None:
            if g is None and pred is None:
                return True
            continue
        if field == "year":
            try:
                if int(pred) == int(g):  # type: ignore[call-overload]
                    return True
            except (TypeError, ValueError):
                pass
            continue
        kp, kg = match_key(str(pred)), match_key(str(g))
        if kp == kg:
            return True
        if field in ("issuer", "region") and (kp in _area_variants(kg) or kg in _area_variants(kp)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- main


def official_counts(preds: list[Pred], gold: list[dict], meta: object, gold_meta: dict) -> tuple[int, dict] | None:
    """The same figures with ragreports.evaluation.scoring (maximum matching) when that module is available."""
    try:
        from ragreports.evaluation.gold import GoldFact
        from ragreports.evaluation.models import PredFact
        from ragreports.evaluation.scoring import match_facts as official_match
        from ragreports.evaluation.scoring import meta_field_correct
    except ImportError:
        return None
    g = [GoldFact(**{k: v for k, v in f.items() if k in ("label", "value", "unit", "approx", "quote")}) for f in gold]
    p = [PredFact(value=x.value, unit=x.unit, approx=x.approx, quote=x.quote) for x in preds]
    tp = len(official_match(g, p).matched)
    ok = {}
    for f in META_FIELDS:
        v = gold_meta.get(f)
        accepted = None if v is None else (v if isinstance(v, list) else [v])
        ok[f] = meta_field_correct(f, accepted, getattr(meta, f))
    return tp, ok


def _f1(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class Tally:
    """Running totals over a suite."""

    ours: list[int] = field(default_factory=lambda: [0, 0, 0])  # tp, predicted, gold
    base: list[int] = field(default_factory=lambda: [0, 0, 0])
    official: list[int] | None = field(default_factory=lambda: [0, 0, 0, 0])  # + meta fields correct
    meta_ok: dict[str, int] = field(default_factory=lambda: dict.fromkeys(META_FIELDS, 0))
    n_reports: int = 0
    slowest: float = 0.0


def _read_text(path: Path) -> str:
    try:
        from ragreports.ingest.loaders import load_file
    except ImportError:
        return path.read_bytes().decode("utf-8", errors="replace")
    return load_file(path).text


def score_one(rep: Path, gold: dict, tally: Tally, show_misses: bool) -> None:
    """Score one report into ``tally`` and print its row (and its misses)."""
    text = clean(_read_text(rep))
    t0 = time.perf_counter()
    facts = extract_facts(text)
    meta = extract_meta(text)
    tally.slowest = max(tally.slowest, time.perf_counter() - t0)
    gfacts = gold.get("facts") or []
    gm = gold.get("meta") or {}
    ours = [Pred(f.value, f.unit, f.quote, f.approx) for f in facts]
    rows = []
    for preds, tot in ((ours, tally.ours), (baseline_facts(text), tally.base)):
        tp, missed, spurious = match_facts(preds, gfacts)
        for k, v in enumerate((tp, len(preds), len(gfacts))):
            tot[k] += v
        rows.append((_f1(tp, len(preds), len(gfacts)), missed, spurious))
    off = official_counts(ours, gfacts, meta, gm)
    if off is None or tally.official is None:
        tally.official = None
    else:
        for k, v in enumerate((off[0], len(ours), len(gfacts), sum(off[1].values()))):
            tally.official[k] += v
    tally.n_reports += 1
    marks = []
    for f in META_FIELDS:
        ok = meta_matches(f, getattr(meta, f), gm.get(f))
        tally.meta_ok[f] += ok
        marks.append(f if ok else f"!{f}")
    (po, ro, _), (pb, rb, _) = rows[0][0], rows[1][0]
    print(f"{rep.name:28} {len(gfacts):4} | {po:6.3f} {ro:5.3f} | {pb:6.3f} {rb:5.3f} | {' '.join(marks)}")
    if show_misses:
        for f in META_FIELDS:
            if not meta_matches(f, getattr(meta, f), gm.get(f)):
                print(f"    META {f}: predicted {getattr(meta, f)!r}, gold {gm.get(f)!r}")
        for g in rows[0][1]:
            print(f"    MISSED   {g['value']:>14} {g['unit']:4} approx={g.get('approx')!s:5} «{g['quote']}»")
        for p in rows[0][2]:
            print(f"    SPURIOUS {p.value:>14} {p.unit:4} approx={p.approx!s:5} «{p.quote}»")


def print_summary(t: Tally) -> None:
    print()
    for tot, label in ((t.ours, "ragreports.extract"), (t.base, "naive baseline")):
        p, r, f1 = _f1(*tot)
        print(f"{label:18} F1 {f1:.3f}  P {p:.3f}  R {r:.3f}  (tp {tot[0]}, predicted {tot[1]}, gold {tot[2]})")
    n = t.n_reports
    if t.official is not None and n:
        p, r, f1 = _f1(*t.official[:3])
        print(f"{'(ragreports.evaluation.scoring)':18} F1 {f1:.3f}  P {p:.3f}  R {r:.3f}  meta all "
              f"{t.official[3] / (n * len(META_FIELDS)):.3f}")
    accs = {f: t.meta_ok[f] / n if n else 0.0 for f in META_FIELDS}
    overall = sum(t.meta_ok.values()) / (n * len(META_FIELDS)) if n else 0.0
    print("meta accuracy      " + "  ".join(f"{f} {a:.2f}" for f, a in accs.items()) + f"  | all {overall:.3f}")
    print(f"slowest report     {t.slowest * 1000:.1f} ms (facts + meta, after warm-up)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("suite", nargs="?", type=Path, default=DEFAULT_SUITE)
    ap.add_argument("--misses", action="store_true", help="print missed gold facts and spurious predictions")
    args = ap.parse_args(argv)
    tally = Tally()
    extract_facts(clean("预热：共组织集中学习5次。"))  # warm-up: rule files and regexes load once per process
    extract_meta("市科技局2024年工作报告")
    print(f"{'report':28} {'gold':>4} | {'ours P':>6} {'R':>5} | {'base P':>6} {'R':>5} | meta")
    for rep in sorted((args.suite / "reports").glob("*")):
        gold_path = args.suite / "gold" / (rep.stem + ".yaml")
        if gold_path.exists():
            score_one(rep, yaml.safe_load(gold_path.read_text(encoding="utf-8")), tally, args.misses)
    print_summary(tally)
    return 0


if __name__ == "__main__":
    sys.exit(main())
