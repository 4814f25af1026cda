"""``ragreports doctor``: do the docstore, the vectors and the BM25 index agree, and can they be read? And
``doctor --repair``: rebuild what is broken from the docstore (the source of truth) and the embedding cache.

Checks (the caller holds the home's write lock, so no ingest is half-way):

- docstore: SQLite ``quick_check``; chunk rows against the recorded counts and the document text; documents left
  ``pending`` by an interrupted ingest.
- vectors: the Chroma store is read in full in a child process (an unreadable HNSW segment may crash the reader; a
  crash there is a finding, not our death): every chunk of a ready document must have a vector with an embedding,
  and no vector may belong to a document that is not indexed.
- BM25: saved for the current generation, with exactly the ready chunks.

Repairs: an unreadable store is wiped and every vector rebuilt; missing vectors are upserted and stray ones
deleted; vectors come from the embedding cache and only chunks missing from it are embedded again
(``re_embedded`` counts them). The BM25 index is rebuilt; pending documents are re-ingested from their source
when it is still there (by the caller's ``reingest``), otherwise removed. The check then runs again, and whatever
it still finds is reported unrepaired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragreports.index.docstore import DocStore
from ragreports.index.embeddings import Embedder, EmbeddingCache
from ragreports.index.lexical import LexicalIndex
from ragreports.index.stores import DiskStore, ServerStore
from ragreports.index.vectors import VectorIndex, vector_extra

log = logging.getLogger("ragreports.index")


@dataclass
class Finding:
    part: str  # docstore | vectors | bm25
    problem: str
    damage: bool = True  # False: a notice (it heals by itself), never a reason to exit 1
    repaired: bool = False

    def to_dict(self) -> dict:
        return {"part": self.part, "problem": self.problem, "damage": self.damage, "repaired": self.repaired}


@dataclass
class DoctorReport:
    home: str
    documents: int = 0
    chunks: int = 0
    vectors: int | None = None
    findings: list[Finding] = field(default_factory=list)
    repaired: bool = False  # a repair ran
    re_embedded: int = 0

    @property
    def damaged(self) -> bool:
        """Damage found and not repaired (the CLI exits 1)."""
        return any(f.damage and not f.repaired for f in self.findings)

    def to_dict(self) -> dict:
        return {"home": self.home, "ok": not self.damaged, "documents": self.documents, "chunks": self.chunks,
                "vectors": self.vectors, "repaired": self.repaired, "re_embedded": self.re_embedded,
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class IndexParts:
    """What the doctor works on; the workspace builds it."""

    home: Path
    docstore: DocStore
    lexical: LexicalIndex
    store: DiskStore | ServerStore
    collection: str
    embedder: Embedder
    cache: Callable[[], EmbeddingCache]
    open_vectors: Callable[[], VectorIndex]  # a fresh VectorIndex (creates the collection when missing)
    reingest: Callable[[str], None]  # re-ingest one source file (pending documents)


@dataclass
class _Plan:
    wipe: bool = False
    missing: dict[str, set[int]] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    bm25: bool = False
    pending: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, source)


def _chunk_id(doc_id: str, idx: int) -> str:
    return f"{doc_id}:{idx}"


def diagnose(parts: IndexParts) -> tuple[DoctorReport, _Plan]:
    ds = parts.docstore
    ready = ds.chunk_ids("ready")
    report = DoctorReport(str(parts.home), documents=len(ds.list("ready")),
                          chunks=sum(len(v) for v in ready.values()))
    plan = _Plan()
    report.findings += [Finding("docstore", p) for p in ds.integrity()]
    for rec in ds.list("pending"):
        plan.pending.append((rec.doc_id, rec.source))
        report.findings.append(Finding("docstore", f"{rec.doc_id} ({rec.source}) was left pending by an "
                                                   "interrupted ingest; it is not searchable"))
    _check_vectors(parts, ready, report, plan)
    state = parts.lexical.state()
    expected = [(d, i) for d in sorted(ready) for i in ready[d]]
    if state["ids"] is None:
        plan.bm25 = True
        report.findings.append(Finding("bm25", "the BM25 index is missing or unreadable (rebuilt on next search)",
                                       damage=False))
    elif state["generation"] != ds.generation or sorted(state["ids"]) != expected:
        plan.bm25 = True
        report.findings.append(Finding("bm25", "the BM25 index is older than the docstore (rebuilt on next search)",
                                       damage=False))
    return report, plan


def _check_vectors(parts: IndexParts, ready: dict[str, list[int]], report: DoctorReport, plan: _Plan) -> None:
    expected = {_chunk_id(d, i) for d, idx in ready.items() for i in idx}
    pending = {d for d, _ in plan.pending}
    store = parts.store
    if isinstance(store, DiskStore):
        with store.session("doctor check", check=False):
            store.close()
            probe = store.probe(parts.collection)
        if probe["error"] is not None:
            plan.wipe = True
            report.findings.append(Finding("vectors", f"the vector store cannot be read: {probe['error']}"))
            return
        got = probe["collections"].get(parts.collection) or {"ids": [], "missing": [], "collection": False}
        ids, no_embedding = set(got["ids"]), set(got["missing"]) & expected
    else:
        ids = set(parts.open_vectors().ids())
        no_embedding = set()
    report.vectors = len(ids)
    missing = (expected - ids) | no_embedding
    for cid in sorted(missing):
        doc_id, _, idx = cid.rpartition(":")
        plan.missing.setdefault(doc_id, set()).add(int(idx))
    if missing - no_embedding:
        report.findings.append(Finding("vectors", f"{len(missing - no_embedding)} chunk(s) of "
                                                  f"{len(plan.missing)} document(s) have no vector"))
    if no_embedding:
        report.findings.append(Finding("vectors", f"{len(no_embedding)} vector(s) have no embedding"))
    plan.extra = sorted(i for i in ids - expected if i.rpartition(":")[0] not in pending)
    if plan.extra:
        report.findings.append(Finding("vectors", f"{len(plan.extra)} vector(s) belong to no indexed document"))


def rebuild_vectors(parts: IndexParts, only: dict[str, set[int]] | None = None, wipe: bool = False) -> int:
    """Upsert the vectors of every ready chunk (or of ``only``) from the embedding cache, embedding what it lacks;
    ``wipe`` first removes the store. Returns how many chunks had to be embedded again."""
    store = parts.store
    if wipe:
        if isinstance(store, DiskStore):
            with store.session("repair: wipe", check=False):
                store.wipe()
        else:
            with store.session("repair: drop"):
                store.client.delete_collection(parts.collection)
                store.close()
    vectors = parts.open_vectors()
    cache = parts.cache()
    embedded = 0
    for rec in parts.docstore.list("ready"):
        if only is not None and rec.doc_id not in only:
            continue
        chunks = [c for c in parts.docstore.chunks(rec.doc_id) if only is None or c.index in only[rec.doc_id]]
        if not chunks:
            continue
        vecs, n = cache.embed(parts.embedder, [c.text for c in chunks])
        embedded += n
        vectors.upsert(rec.doc_id, chunks, vecs, vector_extra(rec.meta))
    if isinstance(store, DiskStore):
        with store.session("repair: done", check=False):
            store.mark_repaired()
    return embedded


def repair(parts: IndexParts, report: DoctorReport, plan: _Plan) -> DoctorReport:
    """Repair what :func:`diagnose` found, then check again; returns the report of the second check, with the
    first one's findings marked repaired when they are gone."""
    ds = parts.docstore
    for doc_id, source in plan.pending:
        if Path(source).exists():
            parts.reingest(source)
        else:
            log.warning("removing %s: its source %s is gone", doc_id, source)
            if not plan.wipe:
                parts.open_vectors().delete_doc(doc_id)
            ds.delete(doc_id)
    re_embedded = 0
    if plan.wipe:
        re_embedded = rebuild_vectors(parts, wipe=True)
    else:
        if plan.extra:
            parts.open_vectors().delete_ids(plan.extra)
        if plan.missing:
            re_embedded = rebuild_vectors(parts, only=plan.missing)
    if plan.bm25 or plan.pending:
        parts.lexical.rebuild()
    after, _ = diagnose(parts)
    still = {(f.part, f.problem) for f in after.findings}
    for f in report.findings:
        f.repaired = (f.part, f.problem) not in still
    after.findings = report.findings + [f for f in after.findings
                                        if (f.part, f.problem) not in {(g.part, g.problem) for g in report.findings}]
    after.repaired, after.re_embedded = True, re_embedded
    return after
