"""Hybrid, series-aware retrieval: dense (Chroma) + BM25 (jieba), fused by reciprocal rank fusion.

A question that names a year or an issuer/region is routed to the matching reports (filter when unambiguous,
preference otherwise) by :mod:`ragreports.retrieve.query`. Preferred reports are searched on their own first, so they
are
found however large the index is, and their passages rank ahead of the rest. Explicit filters (doc, year, issuer)
always win. A query that yields no BM25 tokens is logged: we never silently degrade to dense-only.

The two rankers see the question differently. BM25 gets all of it (exact years, names and counts are what it is
good at). The dense encoder gets the question without the routing cues :func:`ragreports.retrieve.query.understand`
found
(the issuer/region mentions and the years, outside quoted titles): once routing has chosen the report, those words
no longer tell its passages apart, and in a small encoder they drown the content words, pulling the query towards
whichever passage repeats the bureau's name (measured on the dev suite with e5-small: dense recall@5 0.83 -> 0.98).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ragreports.index.docstore import DocRecord, DocStore
from ragreports.index.embeddings import Embedder
from ragreports.index.lexical import LexicalIndex, lexical_terms
from ragreports.index.vectors import VectorIndex
from ragreports.retrieve.query import QueryPlan, understand
from ragreports.text.normalize import match_key, to_simplified
from ragreports.types import Meta, SearchResult

log = logging.getLogger("ragreports.retrieve")

RRF_K = 60
BOOST = 1.0 / (RRF_K + 1)  # added to the scores of a preferred document's passages (they rank first anyway)
TIME_WEIGHT = 1.0 / (RRF_K + 1)  # one unit of time fit is worth a first rank in one ranker

ChunkId = tuple[str, int]
ChunkPeriod = tuple[tuple[int, ...], str, tuple[int, ...]]  # years, kind, mentioned years
QUOTED_SPAN = re.compile(r"“[^”]{1,80}”|《[^》]{1,80}》|「[^」]{1,80}」|『[^』]{1,80}』|\"[^\"]{1,80}\"")
_YEAR = r"(?<![0-9])(?:19|20)[0-9]{2}\s*年度?|[〇零一二三四五六七八九]{4}\s*年度?"
_CONTENT = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")


def rrf_fuse(rankings: Iterable[Sequence[tuple[ChunkId, float]]], k: int = RRF_K) -> dict[ChunkId, float]:
    """Reciprocal rank fusion: each ranking gives its item at rank r (0-based) ``1 / (k + r + 1)``."""
    fused: dict[ChunkId, float] = {}
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + rank + 1)
    return fused


def dense_query(text: str, places: Sequence[str]) -> str:
    """The question for the dense encoder: ``text`` without the place/issuer mentions ``places`` and the years,
    except inside quoted titles (《常州市科技创新促进条例》 stays whole). Falls back to ``text`` when fewer than
    two content characters would be left."""
    protected = [m.span() for m in QUOTED_SPAN.finditer(text)]
    alts = [re.escape(p) for p in sorted({p for p in places if p}, key=len, reverse=True)] + [_YEAR]
    out: list[str] = []
    pos = 0
    for m in re.finditer("|".join(alts), text):
        if any(s <= m.start() < e for s, e in protected):
            continue
        out += [text[pos:m.start()], " "]
        pos = m.end()
    if not out:
        return text
    out.append(text[pos:])
    stripped = re.sub(r"\s+", " ", "".join(out)).strip()
    return stripped if len(_CONTENT.findall(stripped)) >= 2 else text


@dataclass(frozen=True)
class SearchFilters:
    doc_ids: frozenset[str] | None = None  # explicit --doc (resolved)
    year: int | None = None
    issuer: str | None = None


@dataclass
class Retriever:
    docstore: DocStore
    vectors: VectorIndex
    lexical: LexicalIndex
    embedder: Embedder
    route: bool = True
    rankers: tuple[str, ...] = ("dense", "lexical")  # which rankings are fused (benchmarks ablate one)
    last_plan: QueryPlan | None = field(default=None, repr=False)
    _docs: tuple[int, list[DocRecord], tuple[tuple[str, Meta], ...]] | None = field(default=None, repr=False,
                                                                                   init=False)
    _periods: tuple[int, dict[ChunkId, ChunkPeriod]] | None = field(default=None, repr=False, init=False)

    def ready_docs(self) -> tuple[list[DocRecord], tuple[tuple[str, Meta], ...]]:
        """The ready documents and their (doc_id, meta) pairs, re-read only when the index generation changed
        (any ingest, delete or reset bumps it, in this process or another)."""
        gen = self.docstore.generation
        if self._docs is None or self._docs[0] != gen:
            docs = self.docstore.list()
            self._docs = (gen, docs, tuple((d.doc_id, d.meta) for d in docs))
        return self._docs[1], self._docs[2]

    def periods(self) -> dict[ChunkId, ChunkPeriod]:
        """(years, kind, mentioned years) of every ready chunk, re-read when the index generation changed."""
        gen = self.docstore.generation
        if self._periods is None or self._periods[0] != gen:
            self._periods = (gen, self.docstore.periods())
        return self._periods[1]

    def allowed_docs(self, filters: SearchFilters, docs: list[DocRecord]) -> set[str] | None:
        allowed = None
        if filters.doc_ids is not None:
            allowed = set(filters.doc_ids)
        if filters.year is not None:
            ys = {d.doc_id for d in docs if d.meta.year == filters.year}
            allowed = ys if allowed is None else allowed & ys
        if filters.issuer:
            key = match_key(filters.issuer)
            hits = {d.doc_id for d in docs if _names_match(key, d)}
            allowed = hits if allowed is None else allowed & hits
        return allowed

    def search(self, query: str, k: int = 5, filters: SearchFilters = SearchFilters(), fetch: int | None = None
               ) -> list[SearchResult]:
        """The ``k`` best passages for ``query``: dense and BM25 rankings (``fetch`` each, default
        ``max(50, 10k)``) fused by RRF, plus the fit of each passage's years to the years the question names
        (:func:`time_fit`), inside the explicit ``filters``. The reports whose issuer or region the question names
        are searched first, then those of a higher-level area it names, then all: evidence that orders, never a
        filter that refuses."""
        docs, names = self.ready_docs()
        if not docs:
            return []
        q = to_simplified(query.strip())
        allowed = self.allowed_docs(filters, docs)
        self.last_plan = None
        plan: QueryPlan | None = None
        tiers: list[set[str]] = []
        if self.route:
            plan = understand(q, names)
            if filters == SearchFilters():  # explicit filters win over routing
                self.last_plan = plan
            tiers = [set(plan.doc_ids), set(plan.boost_doc_ids)]
        if allowed is not None and not allowed:
            return []
        n = fetch or max(50, 10 * k)
        use_dense = "dense" in self.rankers
        vector = self.embedder.embed_query(dense_query(q, plan.places if plan else ()) if self.route else q) \
            if use_dense else None
        terms = lexical_terms(q)
        if not terms:
            log.warning("query %r yields no BM25 tokens; ranking by dense similarity only", query)
        ready = {d.doc_id: d for d in docs}
        periods = self.periods() if plan is not None and plan.years else {}
        ranked: list[tuple[ChunkId, float]] = []
        scopes = [(t if allowed is None else t & allowed) & set(ready) for t in tiers]
        for i, scope in enumerate([s for s in scopes if s] + [allowed]):
            rankings = ([self.vectors.query(vector, n, scope)] if vector is not None else []) + \
                ([self.lexical.query(terms, n, scope)] if "lexical" in self.rankers else [])
            fused = rrf_fuse(rankings)
            if periods and plan is not None:
                fused = {c: v + TIME_WEIGHT * time_fit(plan, *periods.get(c, ((), "", ()))) for c, v in fused.items()}
            bonus = BOOST * (len(scopes) - i) if scope is not allowed else 0.0
            seen = {c for c, _ in ranked}
            ranked += [(c, fused[c] + bonus) for c in sorted(fused, key=lambda c: (-fused[c], c))
                       if c[0] in ready and c not in seen]
            if len(ranked) >= k:
                break
        ranked = ranked[:k]
        chunks = self.docstore.get_chunks([c for c, _ in ranked])
        out = []
        for cid, score in ranked:
            ch = chunks.get(cid)
            if ch is None:
                continue
            out.append(SearchResult(ch.doc_id, ready[ch.doc_id].source, ch.section, ch.text, ch.start, ch.end,
                                    round(score, 6), ch.years, ch.kind, ch.mentions))
        return out


def time_fit(plan: QueryPlan, years: Sequence[int], kind: str, mentions: Sequence[int] = ()) -> float:
    """How well a passage's period fits the question: +1 when its part of the report is about a year the question
    names (+0.5 more when it also states what is asked, a result or a target; -0.75 when it states the other); +0.3
    when it only mentions such a year; -1 when it is about other years only; 0 when either side names none."""
    if not plan.years or not years:
        return 0.0
    asked = set(plan.years)
    if not asked & set(years):
        return 0.3 if asked & set(mentions) else -1.0
    if not kind:
        return 1.0
    return 1.5 if kind == plan.kind else 0.25


def _names_match(key: str, d: DocRecord) -> bool:
    for name in (d.meta.issuer, d.meta.region):
        if name:
            nk = match_key(name)
            if nk and (key in nk or nk in key):
                return True
    return False


def as_langchain_retriever(retriever: Retriever, k: int = 5, filters: SearchFilters = SearchFilters()):
    """The retriever as a LangChain ``BaseRetriever`` (composes with LCEL chains: ``lc | RunnableLambda(f)``).

    Each passage becomes a ``Document`` whose ``page_content`` is the chunk text and whose metadata holds the
    rest of the :class:`~ragreports.types.SearchResult` (doc_id, source, section, start, end, score)."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    class ReportsRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun
                                    ) -> list[LCDocument]:
            out = []
            for r in retriever.search(query, k=k, filters=filters):
                meta = {key: v for key, v in r.to_dict().items() if key != "text"}
                out.append(LCDocument(page_content=r.text, metadata=meta))
            return out

    return ReportsRetriever()
