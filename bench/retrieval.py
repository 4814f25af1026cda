"""Retrieval benchmark: recall of the gold quote on a suite, side by side with a vanilla LangChain pipeline and
BM25 alone; warm search latency on a large synthetic index.

    python bench/retrieval.py                          # dev suite, e5-small, 20,000-chunk latency index
    python bench/retrieval.py --latency-chunks 0       # recall table only
    RAGREPORTS_CACHE_DIR=/tmp/rr-cache python bench/retrieval.py   # reuse cached e5 vectors between runs

Recall@k: the gold quote lies inside one of the top-k passages of the question's report (normalised containment:
``match_key(quote)`` is a substring of ``match_key(passage)``). All reports of the suite share one index.

Rows: (a) this retriever (``Workspace.search``, default settings: cleaning, outline chunks, routing, dense e5 +
BM25, RRF, passages ranked by the years they speak about); (a1)/(a2) the same retriever fusing one ranking only
(BM25 or dense), to show what the fusion adds; (b) vanilla LangChain:
``RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)`` on the raw decoded report text (no cleaning),
the same e5-small embedder (``passage:``/``query:`` prefixes), exact in-memory cosine top-k over all chunks (numpy;
stands in for Chroma, which would return the same neighbours); (c) BM25 alone (``LexicalIndex`` over our chunks, our
``lexical_terms``, no routing); (d) dense alone (our chunks, e5, the full question, no routing).

Latency: ``Retriever.search`` (k=5) on a synthetic index of >= N chunks: the suite's chunks copied with perturbed
digits under made-up issuers/regions/years, random unit vectors written straight into Chroma (the embedder's
dimension) and BM25 built from the real terms. Queries are the suite's questions (routed: they name a report) and
the same questions without their place names and years (unrouted: the whole index is searched), after a warm-up,
in one process. The e5 query embedding is inside ``search``; its time is also reported on its own.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragreports.config import Settings
from ragreports.evaluation.gold import load_suite
from ragreports.index.docstore import DocStore, check_index_identity
from ragreports.index.lexical import LexicalIndex, chunk_terms, lexical_terms
from ragreports.index.vectors import VectorIndex
from ragreports.ingest.loaders import load_file
from ragreports.providers import get_embedder
from ragreports.retrieve.hybrid import Retriever, dense_query
from ragreports.text.normalize import match_key, to_simplified
from ragreports.types import Chunk, Meta

K = 5


class TimedEmbedder:
    """Wraps an embedder; records the wall time of each query embedding."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.query_seconds: list[float] = []

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        t = time.perf_counter()
        try:
            return self.inner.embed_query(text)
        finally:
            self.query_seconds.append(time.perf_counter() - t)


def _hits(passages: list[tuple[str, str]], doc_id: str, quote: str) -> tuple[bool, bool]:
    """(hit@1, hit@K) for passages [(doc_id, text)] best first."""
    key = match_key(quote)
    found = [i for i, (d, t) in enumerate(passages[:K]) if d == doc_id and key in match_key(t)]
    return bool(found) and found[0] == 0, bool(found)


def _questions(suite, doc_of: dict[str, str]) -> list[tuple[str, str, str]]:
    """The answerable questions (an unanswerable one has no gold passage to find)."""
    return [(doc_of[g.report], q.question, q.quote) for g in suite.gold for q in g.questions if q.quote is not None]


def vanilla_chunks(suite) -> list[tuple[str, str]]:
    """(b): ``RecursiveCharacterTextSplitter(500, 50)`` over each report's raw decoded text: [(report, chunk)]."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    out = []
    for g in suite.gold:
        raw = load_file(suite.report_path(g.report)).text  # decoded only: no cleaning
        out += [(g.report, t) for t in splitter.split_text(raw)]
    return out


def recall_table(suite, settings: Settings) -> tuple[list[tuple[str, float, float, int]], list[float]]:
    from ragreports.workspace import Workspace

    ws = Workspace(settings)
    rep = ws.ingest([suite.report_path(g.report) for g in suite.gold])
    if rep.errors:
        raise SystemExit(f"ingest failed: {rep.errors}")
    doc_of = {Path(d.source).name: d.doc_id for d in rep.documents}
    questions = _questions(suite, doc_of)
    n_ours = sum(d.chunks for d in rep.documents)
    rows: list[tuple[str, float, float, int]] = []

    def score(label: str, fetch, n_chunks: int) -> None:
        h1 = h5 = 0
        for doc_id, question, quote in questions:
            a, b = _hits(fetch(question), doc_id, quote)
            h1, h5 = h1 + a, h5 + b
        rows.append((label, h1 / len(questions), h5 / len(questions), n_chunks))

    ws.search("预热", k=K)  # load the model outside the timed loop
    small_latency: list[float] = []

    def ours(q: str):
        t = time.perf_counter()
        res = ws.search(q, k=K)
        small_latency.append(time.perf_counter() - t)
        return [(r.doc_id, r.text) for r in res]

    score("(a) ragreports hybrid (Workspace.search)", ours, n_ours)

    def ablation(rankers: tuple[str, ...]):
        retriever = Retriever(ws.docstore, ws.vectors, ws.lexical, ws.embedder, rankers=rankers)
        return lambda q: [(r.doc_id, r.text) for r in retriever.search(q, k=K)]

    score("(a1) same, BM25 ranking only (routing, years)", ablation(("lexical",)), n_ours)
    score("(a2) same, dense ranking only (routing, years)", ablation(("dense",)), n_ours)

    # (b) vanilla LangChain
    lc_chunks = [(doc_of[report], t) for report, t in vanilla_chunks(suite)]
    vecs, _ = ws.cache.embed(ws.embedder, [t for _, t in lc_chunks])

    def vanilla(q: str):
        sims = vecs @ ws.embedder.embed_query(q)
        return [lc_chunks[i] for i in np.argsort(-sims, kind="stable")[:K]]

    score("(b) LangChain splitter 500/50 + e5 cosine", vanilla, len(lc_chunks))

    def bm25(q: str):
        ids = [c for c, _ in ws.lexical.query(lexical_terms(to_simplified(q)), K, None)]
        chunks = ws.docstore.get_chunks(ids)
        return [(c[0], chunks[c].text) for c in ids]

    score("(c) BM25 alone (our chunks, lexical_terms)", bm25, n_ours)

    def dense(q: str):
        ids = [c for c, _ in ws.vectors.query(ws.embedder.embed_query(to_simplified(q)), K, None)]
        chunks = ws.docstore.get_chunks(ids)
        return [(c[0], chunks[c].text) for c in ids]

    score("(d) dense alone (our chunks, e5, no routing)", dense, n_ours)
    return rows, small_latency


# -- latency on a synthetic index ----------------------------------------------------------------------------------
_PLACE_CHARS = "安宁平江山河阳新华东西南北城海湖林泉兴丰永嘉德清远长春和康泰定昌盛武文明"


def build_synthetic(src: Settings, home: Path, min_chunks: int, dim: int, name: str) -> tuple[int, int, float]:
    """Copy the indexed suite (``src.home``) into ``home`` until it holds >= ``min_chunks`` chunks."""
    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    srcstore = DocStore(src.docstore_path)
    originals = []
    for rec in srcstore.list():
        text, original = srcstore.text(rec.doc_id)
        originals.append((rec, text, original, srcstore.chunks(rec.doc_id)))
    per_copy = sum(len(c) for *_, c in originals)
    copies = max(1, math.ceil(min_chunks / per_copy))
    store = DocStore(home / "docstore.sqlite3")
    check_index_identity(store, name, dim)
    vectors = VectorIndex(path=home / "chroma", url=None, collection="ragreports", embedder_name=name, dim=dim)
    t0 = time.perf_counter()
    names: set[str] = set()
    total = 0
    for c in range(copies + 1):  # copy 0: the real documents and metadata, so routed questions find them
        for rec, text, original, chunks in originals:
            if c == 0:
                doc_id, meta, body = rec.doc_id, rec.meta, text
            else:
                while (place := "".join(rng.sample(_PLACE_CHARS, 2)) + "市") in names:
                    pass
                names.add(place)
                doc_id = f"{rec.doc_id}-syn{c:04d}"
                meta = Meta(issuer=f"{place}科学技术局", region=place, year=rng.randint(2016, 2025))
                body = "".join(str(rng.randint(0, 9)) if ch.isdigit() and rng.random() < 0.3 else ch for ch in text)
            cs = [Chunk(doc_id, ch.index, body[ch.start:ch.end], ch.start, ch.end, ch.section, ch.tokens)
                  for ch in chunks]
            terms = [" ".join(chunk_terms(meta, x)) for x in cs]
            store.begin_document(doc_id=doc_id, source=f"/synthetic/{doc_id}.txt", sha256=doc_id, fingerprint="",
                                 text=body, original=original, meta=meta, encoding="utf-8", fmt="txt", chunks=cs,
                                 terms=terms)
            v = nrng.standard_normal((len(cs), dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            vectors.upsert(doc_id, cs, v, {"year": meta.year or 0, "issuer": meta.issuer or ""})
            store.mark_ready(doc_id)
            total += len(cs)
    lexical = LexicalIndex(home / "bm25", store)
    lexical.rebuild()
    return total, len(store.list()), time.perf_counter() - t0


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))] * 1000


def latency(src: Settings, suite, min_chunks: int, embedder_spec: str, tmp: Path) -> None:
    emb = TimedEmbedder(get_embedder(Settings(), embedder_spec))
    home = tmp / "latency-home"
    total, ndocs, secs = build_synthetic(src, home, min_chunks, emb.dim, emb.name)
    print(f"\nsynthetic index: {total} chunks in {ndocs} documents (built in {secs:.0f}s; random unit vectors)")
    store = DocStore(home / "docstore.sqlite3")
    vectors = VectorIndex(path=home / "chroma", url=None, collection="ragreports", embedder_name=emb.name, dim=emb.dim)
    retriever = Retriever(store, vectors, LexicalIndex(home / "bm25", store), emb)
    questions = [q.question for g in suite.gold for q in g.questions]
    from ragreports.retrieve.query import understand

    docs = [(d.doc_id, d.meta) for d in DocStore(src.docstore_path).list()]
    unrouted = [dense_query(to_simplified(q), understand(to_simplified(q), docs).places) for q in questions]
    for q in questions[:5] + unrouted[:5]:  # warm-up: model, Chroma segments, BM25 load, jieba
        retriever.search(q, k=K)
    print(f"{'queries (k=5, warm)':34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'embed p50':>10} {'embed p95':>10} "
          f"{'rest p50':>9} {'rest p95':>9}")
    for label, qs in (("routed (name a report)", questions), ("unrouted (whole index)", unrouted)):
        emb.query_seconds.clear()
        wall: list[float] = []
        for q in qs:
            t = time.perf_counter()
            retriever.search(q, k=K)
            wall.append(time.perf_counter() - t)
        embed = list(emb.query_seconds)
        rest = [w - e for w, e in zip(wall, embed, strict=True)]
        print(f"{label:34} {len(qs):4d} {_pct(wall, 50):8.1f} {_pct(wall, 95):8.1f} {_pct(embed, 50):10.1f} "
              f"{_pct(embed, 95):10.1f} {_pct(rest, 50):9.1f} {_pct(rest, 95):9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", nargs="?", default=str(REPO / "eval" / "suites" / "dev"))
    ap.add_argument("--embedder", default="e5-small")
    ap.add_argument("--latency-chunks", type=int, default=20000, help="0 skips the latency run")
    args = ap.parse_args()
    suite = load_suite(args.suite)
    with tempfile.TemporaryDirectory(prefix="ragreports-bench-", ignore_cleanup_errors=True) as tmpdir:
        tmp = Path(tmpdir)
        cache = Path(os.environ["RAGREPORTS_CACHE_DIR"]) if os.environ.get("RAGREPORTS_CACHE_DIR") else tmp / "cache"
        settings = Settings(home=tmp / "home", cache_dir=cache, embedder=args.embedder, llm="none")
        rows, small = recall_table(suite, settings)
        n = sum(q.quote is not None for g in suite.gold for q in g.questions)
        print(f"suite {suite.name}: {n} answerable questions, {len(suite.gold)} reports in one index, "
              f"embedder {args.embedder}")
        print(f"{'retriever':46} {'recall@1':>9} {'recall@5':>9} {'chunks':>7}")
        for label, r1, r5, nc in rows:
            print(f"{label:46} {r1:9.3f} {r5:9.3f} {nc:7d}")
        print(f"(a) warm Workspace.search latency on this small index: p50 {statistics.median(small) * 1000:.0f} ms, "
              f"p95 {_pct(small, 95):.0f} ms (includes the e5 query embedding)")
        if args.latency_chunks > 0:
            latency(settings, suite, args.latency_chunks, args.embedder, tmp)


if __name__ == "__main__":
    main()
