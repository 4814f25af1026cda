"""The thin orchestrator: one object that wires the stages to one index location.

    ws = Workspace(settings)
    report = ws.ingest(["reports/"])          # load -> clean -> meta -> chunk -> embed -> store
    ws.search("技术合同", k=5)                  # hybrid retrieval
    answer, retrieved = ws.ask("2024年昆明市科技局登记技术合同多少项？")
    doc, facts = ws.extract("kunming-kjj-2024")
    brief = ws.summarize("kunming-kjj-2024")

Nothing is opened until first use, so constructing a Workspace is cheap.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragreports.answer.engines import answer_question
from ragreports.answer.llm import ask_llm
from ragreports.brief.engines import summarize
from ragreports.brief.model import Brief
from ragreports.config import Settings
from ragreports.data import read_yaml
from ragreports.errors import ConfigError, EmptyDocumentError, RagReportsError
from ragreports.extract.facts import extract_facts
from ragreports.extract.metadata import GivenMeta, apply_given, extract_meta
from ragreports.extract.periods import annotate_chunks
from ragreports.index.docstore import DocRecord, DocStore, check_index_identity, ensure_home
from ragreports.index.embeddings import Embedder, EmbeddingCache
from ragreports.index.lexical import LexicalIndex, chunk_terms
from ragreports.index.vectors import VectorIndex, drop_collection
from ragreports.ingest.chunking import chunk_document
from ragreports.ingest.loaders import discover, load_file
from ragreports.llm.base import ChatModel
from ragreports.providers import get_chat_model, get_embedder
from ragreports.retrieve.hybrid import Retriever, SearchFilters
from ragreports.text.cleaning import clean
from ragreports.text.tokens import TokenCounter
from ragreports.types import ENGINES, Answer, Chunk, Document, Fact, SearchResult

log = logging.getLogger("ragreports.workspace")

# Bump when cleaning, metadata, chunking or the BM25 terms (index.lexical.lexical_terms) change what is stored:
# documents are then re-processed on ingest. 2: lexical_terms writes Chinese-numeral counts in digits and adds
# #<unit> terms. 3: metadata from evidence (with its quotes), chunks carry the years they speak about. 4: a chunk's
# BM25 terms include its header (place, years, section path).
PIPELINE_VERSION = "4"
SIDECAR_SUFFIX = ".meta.yaml"  # REPORT.meta.yaml beside REPORT.txt: metadata the user states

ProgressFn = Callable[[str, dict], None]  # progress(event, info): "files" {total}, "file" {source}, "embedded" {n}


@dataclass(frozen=True)
class DocStatus:
    doc_id: str
    source: str
    status: str  # added | updated | unchanged
    chunks: int

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source, "status": self.status, "chunks": self.chunks}


@dataclass
class IngestReport:
    documents: list[DocStatus] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    embedded: int = 0  # chunks actually sent to the embedder (cache misses)

    def to_dict(self) -> dict:
        return {
            "documents": [d.to_dict() for d in self.documents],
            "errors": [{"source": s, "error": e} for s, e in self.errors],
        }


class Workspace:
    """One index location (``settings.home``) and the stages wired to it. Every part opens on first use."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, chat_model: ChatModel | None = None):
        self.settings = settings
        self._embedder = embedder
        self._chat_model = chat_model

    # -- lazily opened parts ----------------------------------------------------------------------------
    @functools.cached_property
    def embedder(self) -> Embedder:
        return self._embedder if self._embedder is not None else get_embedder(self.settings)

    @functools.cached_property
    def docstore(self) -> DocStore:
        ensure_home(self.settings.home)
        return DocStore(self.settings.docstore_path)

    @functools.cached_property
    def cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.settings.cache_dir / "embeddings.sqlite3")

    def _dim(self) -> int:
        dim = getattr(self.embedder, "dim", 0)
        if not dim:  # remote embedders learn their dimension from a first call
            dim = int(self.embedder.embed_query("维度").shape[0])
        return dim

    @functools.cached_property
    def vectors(self) -> VectorIndex:
        dim = self._dim()
        check_index_identity(self.docstore, self.embedder.name, dim)
        return VectorIndex(path=self.settings.chroma_path, url=self.settings.chroma_url,
                           collection=self.settings.collection, embedder_name=self.embedder.name, dim=dim)

    @functools.cached_property
    def lexical(self) -> LexicalIndex:
        return LexicalIndex(self.settings.home / "bm25", self.docstore)

    @functools.cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.docstore, self.vectors, self.lexical, self.embedder)

    @functools.cached_property
    def counter(self) -> TokenCounter:
        return TokenCounter(self.settings.tokenizer)

    def chat_model(self, required: bool = False) -> ChatModel | None:
        if self._chat_model is None and self.settings.llm != "none":
            self._chat_model = get_chat_model(self.settings)
        if required and self._chat_model is None:
            raise ConfigError(
                "the llm engine needs a model: set RAGREPORTS_LLM=openai:MODEL (with OPENAI_API_KEY or "
                "RAGREPORTS_LLM_BASE_URL), or gguf:PATH, or pass --llm"
            )
        return self._chat_model

    # -- ingest -----------------------------------------------------------------------------------------
    def _fingerprint(self, sha256: str, given: GivenMeta) -> str:
        s = self.settings
        parts = [sha256, PIPELINE_VERSION, str(s.chunk_tokens), str(s.chunk_overlap_sentences), s.tokenizer,
                 self.embedder.name, given.model_dump_json(exclude_none=True)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    @staticmethod
    def given_meta(path: Path, overrides: Mapping[str, object] | None = None) -> GivenMeta:
        """What the user states about a report: its sidecar ``REPORT.meta.yaml`` (or ``REPORT.txt.meta.yaml``), then
        ``overrides`` (``ingest --meta KEY=VALUE``) on top."""
        values: dict[str, object] = {}
        for side in (path.with_suffix(SIDECAR_SUFFIX), path.with_name(path.name + SIDECAR_SUFFIX)):
            if side.is_file():
                data = read_yaml(side) or {}
                if not isinstance(data, dict):
                    raise ConfigError(f"{side}: must map fields to values, e.g. `issuer: 某市科学技术局`")
                values.update(data)
                break
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return GivenMeta.model_validate(values)
        except ValueError as exc:
            raise ConfigError(f"{path}: stated metadata is invalid ({exc}); allowed fields: "
                              f"{', '.join(GivenMeta.model_fields)}") from None

    def ingest(self, paths: Iterable[str | Path], progress: ProgressFn | None = None,
               meta: Mapping[str, object] | None = None) -> IngestReport:
        """Ingest files and folders; ``meta`` (field -> value) is stated for every one of them and wins over what is
        extracted (as does a report's sidecar ``REPORT.meta.yaml``)."""
        files, errors = discover(paths)
        report = IngestReport(errors=list(errors))
        progress = progress or (lambda event, info: None)
        progress("files", {"total": len(files)})
        _ = self.vectors  # open (and check) the index before touching any file
        changed = False
        for path in files:
            progress("file", {"source": str(path)})
            try:
                status, embedded = self._ingest_one(path, progress, self.given_meta(path, meta))
            except RagReportsError as exc:
                report.errors.append((str(path), str(exc)))
                continue
            report.documents.append(status)
            report.embedded += embedded
            changed = changed or status.status != "unchanged"
        if changed or not (self.settings.home / "bm25").exists():
            self.lexical.rebuild()
        return report

    def _ingest_one(self, path: Path, progress: ProgressFn, given: GivenMeta) -> tuple[DocStatus, int]:
        """Ingest one file; returns its status and how many chunks were sent to the embedder."""
        raw = load_file(path)
        ds = self.docstore
        prev = ds.by_source(raw.source)
        fp = self._fingerprint(raw.sha256, given)
        if prev and prev.status == "ready" and prev.fingerprint == fp:
            return DocStatus(prev.doc_id, prev.source, "unchanged", prev.chunks), 0
        text = clean(raw.text)
        if not text.strip():
            raise EmptyDocumentError(f"{raw.source}: no report text left after cleaning (empty or only page chrome)")
        doc_id = prev.doc_id if prev else ds.new_doc_id(raw.source)
        try:
            meta = apply_given(extract_meta(text), given)
        except ValueError as exc:
            raise ConfigError(f"{raw.source}: {exc}") from None
        chunks = chunk_document(doc_id, text, max_tokens=self.settings.chunk_tokens,
                                overlap_sentences=self.settings.chunk_overlap_sentences, count_tokens=self.counter)
        chunks = annotate_chunks(chunks, text, meta)
        # Embed before touching the index: a failure here leaves any previous version intact.
        vecs, n = self.cache.embed(self.embedder, [c.text for c in chunks],
                                   on_embedded=lambda k: progress("embedded", {"n": k}))
        terms = [" ".join(chunk_terms(meta, c)) for c in chunks]
        ds.begin_document(doc_id=doc_id, source=raw.source, sha256=raw.sha256, fingerprint=fp, text=text,
                          original=raw.text, meta=meta, encoding=raw.encoding, fmt=raw.format,
                          chunks=chunks, terms=terms)
        extra = {"year": meta.year or 0, "issuer": meta.issuer or ""}
        self.vectors.delete_doc(doc_id)
        self.vectors.upsert(doc_id, chunks, vecs, extra)
        ds.mark_ready(doc_id)
        return DocStatus(doc_id, raw.source, "updated" if prev else "added", len(chunks)), n

    def reset(self) -> None:
        """Drop the whole index (docstore rows, vectors, BM25) so it can be rebuilt, e.g. with another embedder.
        The embedding cache is kept (it is keyed by embedder name)."""

        ds = self.docstore
        with ds.db:
            ds.db.execute("UPDATE documents SET status='pending'")  # invisible from here on
        drop_collection(self.settings.chroma_path, self.settings.chroma_url, self.settings.collection)
        with ds.db:
            ds.db.execute("DELETE FROM chunks")
            ds.db.execute("DELETE FROM documents")
            ds.db.execute("DELETE FROM info WHERE key IN ('embedder', 'dim')")
        ds.mark_ready("")  # bumps the generation: any BM25 index on disk is now stale
        shutil.rmtree(self.settings.home / "bm25", ignore_errors=True)
        for name in ("vectors", "retriever", "lexical"):
            self.__dict__.pop(name, None)

    def delete(self, doc: str) -> str:
        rec = self.docstore.get(doc) or self.docstore.resolve(doc)
        self.vectors.delete_doc(rec.doc_id)
        self.docstore.delete(rec.doc_id)
        self.lexical.rebuild()
        return rec.doc_id

    # -- reading ----------------------------------------------------------------------------------------
    def list(self) -> list[DocRecord]:
        return self.docstore.list()

    def get_document(self, doc: str) -> Document:
        rec = self.docstore.resolve(doc)
        text, original = self.docstore.text(rec.doc_id)
        return Document(rec.doc_id, rec.source, text, original, rec.sha256, rec.meta)

    def chunks(self, doc: str) -> list[Chunk]:
        return self.docstore.chunks(self.docstore.resolve(doc).doc_id)

    def _filters(self, doc: str | None, year: int | None, issuer: str | None) -> SearchFilters:
        ids = frozenset([self.docstore.resolve(doc).doc_id]) if doc else None
        return SearchFilters(doc_ids=ids, year=year, issuer=issuer)

    def search(self, query: str, k: int | None = None, doc: str | None = None, year: int | None = None,
               issuer: str | None = None) -> list[SearchResult]:
        return self.retriever.search(query, k=k or self.settings.k, filters=self._filters(doc, year, issuer))

    def ask(self, question: str, k: int | None = None, doc: str | None = None, year: int | None = None,
            issuer: str | None = None, engine: str = "extractive", callbacks: Sequence = ()
            ) -> tuple[Answer, list[SearchResult]]:
        """Retrieve and answer. ``engine="llm"`` runs retrieval and answer as one LangChain chain
        (:func:`ragreports.answer.llm.ask_llm`); ``callbacks`` (LangChain handlers) see its model calls stream."""
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; use extractive or llm")
        model = self.chat_model(required=engine == "llm")
        if engine == "llm":
            s = self.settings
            return ask_llm(question, self.retriever, k=k or s.k, filters=self._filters(doc, year, issuer),
                           doc_text=lambda d: self.docstore.text(d)[0], chat_model=model, prompts_dir=s.prompts_dir,
                           context_tokens=s.llm_context_tokens, reasks=s.llm_reasks, callbacks=callbacks)
        retrieved = self.search(question, k=k, doc=doc, year=year, issuer=issuer)
        texts = {r.doc_id: self.docstore.text(r.doc_id)[0] for r in retrieved}
        ans = answer_question(question, retrieved, texts, plan=self.retriever.last_plan, engine=engine,
                              chat_model=model, prompts_dir=self.settings.prompts_dir,
                              context_tokens=self.settings.llm_context_tokens, reasks=self.settings.llm_reasks)
        return ans, retrieved

    def extract(self, doc: str) -> tuple[Document, list[Fact]]:
        d = self.get_document(doc)
        return d, extract_facts(d.text, d.meta)

    def summarize(self, doc: str, engine: str = "extractive") -> Brief:
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; use extractive or llm")
        d, facts = self.extract(doc)
        return summarize(d, facts, engine=engine, chat_model=self.chat_model(required=engine == "llm"),
                         prompts_dir=self.settings.prompts_dir, reasks=self.settings.llm_reasks)
