"""Ingest benchmark: chunks/s, share of wall time inside the embedder, unchanged re-ingest time.

    python bench/ingest.py                       # sample corpus with e5-small, synthetic corpus with `use`
    python bench/ingest.py --synthetic-embedder e5-small   # the >= 2,000-chunk corpus with e5 too (~5 min)

Targets (issue #2): pipeline overhead <= 10% beyond the embedder; unchanged re-ingest >= 100x faster than the
first ingest. Each run uses a fresh index and a fresh embedding cache in a temp dir.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragreports.config import Settings
from ragreports.providers import get_embedder
from ragreports.workspace import Workspace


class TimedEmbedder:
    """Wraps an embedder and accumulates the wall time spent inside it."""

    def __init__(self, inner):
        self.inner, self.name, self.seconds = inner, inner.name, 0.0

    @property
    def dim(self):
        return self.inner.dim

    def embed_documents(self, texts):
        t = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - t

    def embed_query(self, text):
        t = time.perf_counter()
        try:
            return self.inner.embed_query(text)
        finally:
            self.seconds += time.perf_counter() - t


def synthetic_corpus(dest: Path, min_chunks: int, chunks_per_copy: int) -> int:
    """Copies of the sample reports with perturbed numbers and shuffled paragraphs (so no two are identical)."""
    rng = random.Random(7)
    sources = sorted((REPO / "examples" / "reports").glob("*.txt"))
    copies = max(1, -(-min_chunks // max(1, chunks_per_copy)))
    n = 0
    for c in range(copies):
        for src in sources:
            paras = src.read_text(encoding="utf-8").split("\n")
            head, body = paras[:3], paras[3:]
            rng.shuffle(body)
            text = "\n".join(head + body)
            text = "".join(str(rng.randint(0, 9)) if ch.isdigit() and rng.random() < 0.3 else ch for ch in text)
            (dest / f"{src.stem}-copy{c:03d}.txt").write_text(text + f"\n（副本{c}）\n", encoding="utf-8")
            n += 1
    return n


def run(label: str, corpus: Path, embedder_spec: str, tmp: Path) -> int:
    home = tmp / f"home-{label}"
    settings = Settings(home=home, cache_dir=home / "cache", embedder=embedder_spec, llm="none")
    emb = TimedEmbedder(get_embedder(Settings(), embedder_spec))
    ws = Workspace(settings, embedder=emb)
    # one-time start-up outside the timed region, as in a long-running process: open the index, load the
    # tokenizer's BPE ranks and jieba's dictionary
    _ = ws.vectors
    ws.counter.count("预热")
    from ragreports.index.lexical import lexical_terms

    lexical_terms("预热")
    t0 = time.perf_counter()
    rep = ws.ingest([corpus])
    first = time.perf_counter() - t0
    chunks = sum(d.chunks for d in rep.documents)
    t1 = time.perf_counter()
    rep2 = Workspace(settings, embedder=emb).ingest([corpus])
    again = time.perf_counter() - t1
    assert all(d.status == "unchanged" for d in rep2.documents)
    inside = emb.seconds
    overhead = (first - inside) / inside if inside else float("nan")
    print(f"{label:10} docs={len(rep.documents):4d} chunks={chunks:5d} embedder={embedder_spec:9} "
          f"first={first:8.2f}s chunks/s={chunks / first:7.1f} in-embedder={inside / first:6.1%} "
          f"overhead-beyond-embedder={overhead:6.1%} reingest={again:6.3f}s speedup={first / again:7.0f}x")
    return chunks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedder", default="e5-small")
    ap.add_argument("--synthetic-embedder", default="use")
    ap.add_argument("--min-chunks", type=int, default=2000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ragreports-bench-"))
    try:
        sample_chunks = run("samples", REPO / "examples" / "reports", args.embedder, tmp)
        syn = tmp / "synthetic"
        syn.mkdir()
        synthetic_corpus(syn, args.min_chunks, sample_chunks)
        run("synthetic", syn, args.synthetic_embedder, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
