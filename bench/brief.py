"""Benchmark of the standard brief on a gold suite (default: eval/suites/dev).

    /tmp/venv/bin/python bench/brief.py [SUITE] [--engine extractive] [--misses]

For every report: clean the text, build a Document (meta from ragreports.extract.metadata when present), summarise it,
and score section coverage as spec/gold-format.md says: a gold section point is covered when an item of THAT
section cites evidence overlapping its quote (ragreports.textnorm.quotes_overlap). Also checks that every
evidence is verified (text[start:end] == quote) and prints items and evidence length per report.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

from ragreports.brief.engines import summarize
from ragreports.brief.model import FIELDS
from ragreports.text.cleaning import clean
from ragreports.text.normalize import quotes_overlap
from ragreports.types import Document, Meta

ROOT = Path(__file__).resolve().parent.parent


def _read(path: Path) -> str:
    try:
        from ragreports.ingest.loaders import load_file as load

        return load(path).text
    except Exception:
        return path.read_text(encoding="utf-8", errors="replace")


def _meta(text: str) -> Meta:
    try:
        from ragreports.extract.metadata import extract_meta

        return extract_meta(text)
    except ImportError:
        return Meta()


def _facts(text: str) -> list:
    try:
        from ragreports.extract.facts import extract_facts

        return extract_facts(text)
    except ImportError:
        return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", nargs="?", default=str(ROOT / "eval" / "suites" / "dev"))
    ap.add_argument("--engine", default="extractive")
    ap.add_argument("--misses", action="store_true", help="print the gold points that are not covered")
    args = ap.parse_args(argv)
    suite = Path(args.suite)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    n_ev = n_ok = 0
    t0 = time.perf_counter()
    for gold_path in sorted((suite / "gold").glob("*.yaml")):
        gold = yaml.safe_load(gold_path.read_text(encoding="utf-8"))
        raw = _read(suite / "reports" / gold["report"])
        text = clean(raw)
        doc = Document(gold_path.stem, gold["report"], text, raw, hashlib.sha256(raw.encode()).hexdigest(), _meta(text))
        brief = summarize(doc, _facts(text), engine=args.engine)
        per: dict[str, tuple[int, int]] = {}
        misses = []
        for field, points in (gold.get("sections") or {}).items():
            quotes = [ev.quote for it in getattr(brief, field, []) for ev in it.evidence]
            hit = 0
            for p in points or []:
                if any(quotes_overlap(p, q) for q in quotes):
                    hit += 1
                else:
                    misses.append((field, p))
            per[field] = (hit, len(points or []))
            totals[field][0] += hit
            totals[field][1] += len(points or [])
        for _, it in brief.items():
            for ev in it.evidence:
                n_ev += 1
                n_ok += text[ev.start:ev.end] == ev.quote
        counts = {f: len(getattr(brief, f)) for f in FIELDS}
        ev_chars = [ev.end - ev.start for _, it in brief.items() for ev in it.evidence]
        hit = sum(h for h, _ in per.values())
        tot = sum(t for _, t in per.values())
        print(f"{gold_path.stem:24s} coverage {hit}/{tot} = {hit / max(tot, 1):.2f}  "
              + "  ".join(f"{f}:{h}/{t}" for f, (h, t) in per.items()))
        print(f"{'':24s} items " + " ".join(f"{f}={n}" for f, n in counts.items())
              + f"  evidence={len(ev_chars)} mean_chars={sum(ev_chars) / max(len(ev_chars), 1):.0f}"
              + f" max_chars={max(ev_chars, default=0)}")
        if args.misses:
            for f, p in misses:
                print(f"{'':26s}MISS {f}: {p}")
    hit = sum(h for h, _ in totals.values())
    tot = sum(t for _, t in totals.values())
    print("-" * 80)
    print("per section: " + "  ".join(f"{f} {h}/{t}={h / max(t, 1):.2f}" for f, (h, t) in totals.items()))
    print(f"OVERALL coverage {hit}/{tot} = {hit / max(tot, 1):.3f}")
    print(f"evidence verified {n_ok}/{n_ev} = {n_ok / max(n_ev, 1):.3f}   ({time.perf_counter() - t0:.1f} s)")
    return 0 if n_ok == n_ev else 1


if __name__ == "__main__":
    sys.exit(main())
