"""Hybrid, series-aware retrieval: dense (Chroma) + BM25 (jieba), fused by reciprocal rank fusion.

A question that names a year or an issuer/region is routed to the matching reports (filter when unambiguous,
boost otherwise) by :mod:`ragreports.query`. Explicit filters (doc, year, issuer) always win. A query that yields
no BM25 tokens is logged: we never silently degrade to dense-only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ragreports.store import DocRecord, DocStore, LexicalIndex, VectorIndex, lexical_terms
from ragreports.textnorm import match_key, to_simplified
from ragreports.types import SearchResult

log = logging.getLogger("ragreports.retrieval")

RRF_K = 60
BOOST = 1.0 / (RRF_K + 1)  # a routed document gains as much as one extra first-rank vote


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
    embedder: object
    route: bool = True
    last_plan: object | None = field(default=None, repr=False)

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
        docs = self.docstore.list()
        if not docs:
            return []
        q = to_simplified(query.strip())
        allowed = self.allowed_docs(filters, docs)
        boost: set[str] = set()
        self.last_plan = None
        if self.route and filters == SearchFilters():
            from ragreports.query import understand

            plan = understand(q, [(d.doc_id, d.meta) for d in docs])
            self.last_plan = plan
            if plan.doc_ids:
                allowed = set(plan.doc_ids)
            boost = set(plan.boost_doc_ids or ())
        if allowed is not None and not allowed:
            return []
        n = fetch or max(50, 10 * k)
        dense = self.vectors.query(self.embedder.embed_query(q), n, allowed)
        terms = lexical_terms(q)
        if not terms:
            log.warning("query %r yields no BM25 tokens; ranking by dense similarity only", query)
        lex = self.lexical.query(terms, n, allowed)
        fused: dict[tuple[str, int], float] = {}
        for ranking in (dense, lex):
            for rank, (cid, _) in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        for cid in fused:
            if cid[0] in boost:
                fused[cid] += BOOST
        ready = {d.doc_id: d for d in docs}
        ranked = sorted((c for c in fused if c[0] in ready), key=lambda c: (-fused[c], c))[:k]
        chunks = self.docstore.get_chunks(ranked)
        out = []
        for cid in ranked:
            ch = chunks.get(cid)
            if ch is None:
                continue
            out.append(SearchResult(ch.doc_id, ready[ch.doc_id].source, ch.section, ch.text, ch.start, ch.end,
                                    round(fused[cid], 6)))
        return out


def _names_match(key: str, d: DocRecord) -> bool:
    for name in (d.meta.issuer, d.meta.region):
        if name:
            nk = match_key(name)
            if nk and (key in nk or nk in key):
                return True
    return False


def as_langchain_retriever(retriever: Retriever, k: int = 5, filters: SearchFilters = SearchFilters()):
    """The retriever as a LangChain ``BaseRetriever`` (composes with LCEL chains)."""
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    class ReportsRetriever(BaseRetriever):
        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun
                                    ) -> list[LCDocument]:
            return [
                LCDocument(page_content=r.text, metadata={**r.to_dict(), "text": None})
                for r in retriever.search(query, k=k, filters=filters)
            ]

    return ReportsRetriever()
