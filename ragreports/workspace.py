"""The thin orchestrator: one object that wires the stages to one index location.

    ws = Workspace(settings)
    report = ws.ingest(["reports/"])          # load -> clean -> meta -> chunk -> embed -> store
    ws.search("技术合同", k=5)                  # hybrid retrieval
    answer, retrieved = ws.ask("2024年昆明市科技局登记技术合同多少项？")
    doc, facts = ws.extract("kunming-kjj-2024")
    brief = ws.summarize("kunming-kjj-2024")

Nothing is opened until first use, so constructing a Workspace is cheap.

Several processes may use one index at once. Writers (``ingest``, ``delete``, ``reset``, ``doctor``) hold the home's
``write.lock`` for the whole call, one at a time: a second one waits (``progress("waiting", {"holder": …})``) or,
with ``wait=False``, raises :class:`~ragreports.errors.IndexBusyError`. Readers never take it: they read committed
state only (ready documents), and every touch of Chroma's or the BM25 files takes turns under ``storage.lock``
(:mod:`ragreports.index.stores`). A batch goes on past a file that fails (its error is reported); it stops at a full
disk or a damaged vector store, leaving every finished document readable.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragreports.answer.engines import answer_question
from ragreports.answer.llm import ask_llm
from ragreports.brief.engines import summarize
from ragreports.brief.model import Brief
from ragreports.config import Settings
from ragreports.data import read_yaml
from ragreports.errors import (
    ConfigError,
    DiskFullError,
    EmptyDocumentError,
    IndexDamagedError,
    MetadataError,
    RagReportsError,
)
from ragreports.extract.facts import extract_facts
from ragreports.extract.metadata import GivenMeta, apply_given, extract_meta
from ragreports.extract.periods import annotate_chunks
from ragreports.index.docstore import DocRecord, DocStore, check_index_identity, ensure_home
from ragreports.index.doctor import DoctorReport, IndexParts, diagnose, rebuild_vectors, repair
from ragreports.index.embeddings import Embedder, EmbeddingCache
from ragreports.index.faults import ensure_space
from ragreports.index.lexical import LexicalIndex, chunk_terms
from ragreports.index.locks import describe_process, write_lock
from ragreports.index.stores import DiskStore, drop_collection, open_store
from ragreports.index.vectors import NoVectors, VectorIndex, vector_extra
from ragreports.ingest.chunking import chunk_document
from ragreports.ingest.loaders import discover, load_file
from ragreports.llm.base import ChatModel
from ragreports.providers import get_chat_model, get_embedder
from ragreports.retrieve.hybrid import Retriever, SearchFilters
from ragreports.text.cleaning import clean, has_report_text
from ragreports.text.flags import text_flags
from ragreports.text.tokens import TokenCounter, seed_tiktoken_cache
from ragreports.types import ENGINES, Answer, Chunk, Document, Fact, SearchResult

log = logging.getLogger("ragreports.workspace")

# Bump when cleaning, metadata, chunking or the BM25 terms (index.lexical.lexical_terms) change what is stored:
# documents are then re-processed on ingest. 2: lexical_terms writes Chinese-numeral counts in digits and adds
# #<unit> terms. 3: metadata from evidence (with its quotes), chunks carry the years they speak about. 4: a chunk's
# BM25 terms include its header (place, years, section path). 5: cleaning repairs mojibake; chunks store their flags
# (injected / unreadable text).
PIPELINE_VERSION = "5"
SIDECAR_SUFFIX = ".meta.yaml"  # REPORT.meta.yaml beside REPORT.txt: metadata the user states

# progress(event, info): "files" {total}, "file" {source}, "embedded" {n}, "waiting" {holder} (another writer holds
# the index), "flagged" {doc_id, kind, start, end, text}
ProgressFn = Callable[[str, dict], None]


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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # files found in folders and not ingested, and why
    flagged: list[dict] = field(default_factory=list)  # text addressed to a model found in this batch
    pruned: list[str] = field(default_factory=list)  # doc ids removed because their file is gone (prune=True)
    stopped: str | None = None  # why the batch stopped early (full disk, damaged index)
    not_done: list[str] = field(default_factory=list)  # files left unprocessed when it stopped

    def to_dict(self) -> dict:
        out: dict = {
            "documents": [d.to_dict() for d in self.documents],
            "errors": [{"source": s, "error": e} for s, e in self.errors],
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "flagged": self.flagged,
            "pruned": self.pruned,
        }
        if self.stopped:
            out["stopped"] = {"error": self.stopped, "not_done": self.not_done}
        return out


def _space_needed(original: str, text: str, chunks: list[Chunk], terms: list[str], vecs) -> int:
    """Bytes a document may take in the home while it is written: its texts in the docstore (and its WAL), its
    vectors and chunk texts in Chroma (log, segments, full-text index), plus a margin."""
    chars = len(original) + len(text) + sum(len(c.text) for c in chunks) + sum(len(t) for t in terms)
    return 2 * 3 * chars + 3 * int(getattr(vecs, "nbytes", 0)) + 3 * 3 * sum(len(c.text) for c in chunks) + (1 << 20)


def _own_message(source: str, message: str) -> str:
    """An error message without the leading ``SOURCE: `` that loaders put in (the report names the source)."""
    for prefix in (f"{source}: ", f"{os.path.abspath(source)}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


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
        try:
            vectors = self.vectors
        except DiskFullError as exc:  # Chroma cannot open without writing: search with BM25 alone
            vectors = NoVectors(str(exc))
        return Retriever(self.docstore, vectors, self.lexical, self.embedder)

    @functools.cached_property
    def counter(self) -> TokenCounter:
        seed_tiktoken_cache(self.settings.cache_dir / "tiktoken")
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
                try:
                    data = read_yaml(side) or {}
                except ConfigError as exc:
                    raise MetadataError(str(exc)) from None
                if not isinstance(data, dict):
                    raise MetadataError(f"{side}: must map fields to values, e.g. `issuer: 某市科学技术局`")
                values.update(data)
                break
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return GivenMeta.model_validate(values)
        except ValueError as exc:
            raise MetadataError(f"{path}: stated metadata is invalid ({exc}); allowed fields: "
                              f"{', '.join(GivenMeta.model_fields)}") from None

    @contextlib.contextmanager
    def writing(self, *, wait: bool = True, progress: ProgressFn | None = None) -> Iterator[None]:
        """Hold the home's write lock (one writer at a time; see the module docstring)."""
        home = self.settings.home
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the index location {home} ({exc.strerror}); set RAGREPORTS_HOME or "
                              "--home") from None
        lock = write_lock(home)
        notify = (lambda holder: progress("waiting", {"holder": holder})) if progress else None
        with lock.hold(wait=wait, on_wait=notify, record=describe_process()):
            ensure_home(home)
            yield

    def ingest(self, paths: Iterable[str | Path], progress: ProgressFn | None = None, *, wait: bool = True,
               prune: bool = False, reindex: bool = False, meta: Mapping[str, object] | None = None) -> IngestReport:
        """Ingest files and folders; each file fails on its own (``report.errors``), a full disk or a damaged vector
        store stops the batch (``report.stopped``). ``prune`` removes documents whose file is gone; ``reindex``
        drops the index first. ``meta`` (field -> value) is stated for every file and wins over what is extracted
        (as does a report's sidecar ``REPORT.meta.yaml``). Waits for another writer unless ``wait=False`` (then
        IndexBusyError)."""
        progress = progress or (lambda event, info: None)
        with self.writing(wait=wait, progress=progress):
            if reindex:
                self.reset()
            return self._ingest_locked(paths, progress, prune, meta)

    def _ingest_locked(self, paths: Iterable[str | Path], progress: ProgressFn, prune: bool,
                       meta: Mapping[str, object] | None) -> IngestReport:
        skipped: list[tuple[str, str]] = []
        files, errors = discover(paths, skipped=skipped)
        report = IngestReport(errors=list(errors), skipped=skipped)
        progress("files", {"total": len(files)})
        _ = self.vectors  # open (and check) the index before touching any file
        changed = False
        for n, path in enumerate(files):
            progress("file", {"source": str(path)})
            try:
                status, embedded = self._ingest_one(path, progress, report, self.given_meta(path, meta))
            except MetadataError as exc:
                report.errors.append((str(path), _own_message(str(path), str(exc))))
                continue
            except ConfigError:
                raise  # the same for every file (an unwritable cache, another embedder): nothing to go on with
            except (DiskFullError, IndexDamagedError) as exc:
                report.errors.append((str(path), str(exc)))
                report.stopped, report.not_done = str(exc), [str(f) for f in files[n + 1:]]
                break
            except RagReportsError as exc:
                report.errors.append((str(path), _own_message(str(path), str(exc))))
                continue
            report.documents.append(status)
            report.embedded += embedded
            changed = changed or status.status != "unchanged"
        if prune and not report.stopped:
            report.pruned = self._prune()
            changed = changed or bool(report.pruned)
        if changed or not (self.settings.home / "bm25").exists():
            self.lexical.rebuild()
        return report

    def _ingest_one(self, path: Path, progress: ProgressFn, report: IngestReport, given: GivenMeta
                    ) -> tuple[DocStatus, int]:
        """Ingest one file; returns its status and how many chunks were sent to the embedder."""
        raw = load_file(path)
        ds = self.docstore
        prev = ds.by_source(raw.source)
        fp = self._fingerprint(raw.sha256, given)
        if prev and prev.status == "ready" and prev.fingerprint == fp:
            return DocStatus(prev.doc_id, prev.source, "unchanged", prev.chunks), 0
        text = clean(raw.text)
        if not text.strip() or not has_report_text(text):
            raise EmptyDocumentError(f"{raw.source}: no report text left after cleaning (empty or only page chrome)")
        doc_id = prev.doc_id if prev else ds.new_doc_id(raw.source)
        try:
            meta = apply_given(extract_meta(text), given)
        except ValueError as exc:
            raise MetadataError(f"{raw.source}: {exc}") from None
        chunks = chunk_document(doc_id, text, max_tokens=self.settings.chunk_tokens,
                                overlap_sentences=self.settings.chunk_overlap_sentences, count_tokens=self.counter)
        chunks = annotate_chunks(chunks, text, meta)
        # Embed before touching the index: a failure here leaves any previous version intact.
        vecs, n = self.cache.embed(self.embedder, [c.text for c in chunks],
                                   on_embedded=lambda k: progress("embedded", {"n": k}))
        terms = [" ".join(chunk_terms(meta, c)) for c in chunks]
        if isinstance(self.vectors.store, DiskStore):  # stop before a write a full disk would cut in half
            ensure_space(self.settings.home, _space_needed(raw.text, text, chunks, terms, vecs))
        flags = text_flags(text)
        for kind, spans in (("injection", flags.injection), ("unreadable", flags.unreadable)):
            for s, e in spans:
                item = {"doc_id": doc_id, "source": raw.source, "kind": kind, "start": s, "end": e,
                        "text": text[s:e][:200]}
                if kind == "injection":
                    report.flagged.append(item)
                progress("flagged", item)
        ds.begin_document(doc_id=doc_id, source=raw.source, sha256=raw.sha256, fingerprint=fp, text=text,
                          original=raw.text, meta=meta, encoding=raw.encoding, fmt=raw.format,
                          chunks=chunks, terms=terms, flags=[flags.within(c.start, c.end) for c in chunks])
        self.vectors.delete_doc(doc_id)
        self.vectors.upsert(doc_id, chunks, vecs, vector_extra(meta))
        ds.mark_ready(doc_id)
        return DocStatus(doc_id, raw.source, "updated" if prev else "added", len(chunks)), n

    def _prune(self) -> list[str]:
        """Remove the documents whose source file is gone (an unreadable folder does not count as gone)."""
        gone = []
        for rec in self.docstore.list("ready") + self.docstore.list("pending"):
            try:
                exists = Path(rec.source).exists()
            except OSError:
                exists = True
            if not exists:
                gone.append(rec.doc_id)
        for doc_id in gone:
            self.vectors.delete_doc(doc_id)
            self.docstore.delete(doc_id)
        if gone:
            self._scrub(gone)
        return gone

    def reset(self) -> None:
        """Drop the whole index (docstore rows, vectors, BM25) so it can be rebuilt, e.g. with another embedder.
        The embedding cache is kept (it is keyed by embedder name)."""
        with self.writing():
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

    def delete(self, doc: str, *, wait: bool = True, progress: ProgressFn | None = None) -> str:
        """Remove a document from the docstore, the vectors and the BM25 index, and scrub its text from the files
        of the home (SQLite free pages, Chroma's write-ahead log)."""
        with self.writing(wait=wait, progress=progress):
            rec = self.docstore.get(doc) or self.docstore.resolve(doc)
            self.vectors.delete_doc(rec.doc_id)
            self.docstore.delete(rec.doc_id)
            self.lexical.rebuild()
            self._scrub([rec.doc_id])
            return rec.doc_id

    def _scrub(self, doc_ids: list[str]) -> None:
        """Leave no text of ``doc_ids`` in the home: vacuum the docstore; Chroma keeps the text of recent writes in
        its write-ahead log until it next persists the segment, so when the log still holds them the vectors are
        rebuilt (from the cache) before Chroma's database is vacuumed."""
        self.docstore.vacuum()
        store = self.vectors.store
        if not isinstance(store, DiskStore):
            return  # a Chroma server's files are the server's
        with store.session("scrub", check=False):
            holds = store.log_holds(doc_ids)
        if holds is not False:
            log.info("Chroma's log still holds %s; rebuilding the vectors without them", ", ".join(doc_ids))
            rebuild_vectors(self._parts(), wipe=True)
            self.__dict__.pop("vectors", None)
            self.__dict__.pop("retriever", None)
        with store.session("vacuum", check=False):
            store.vacuum()

    # -- doctor ------------------------------------------------------------------------------------------
    def _parts(self) -> IndexParts:
        def open_vectors() -> VectorIndex:
            self.__dict__.pop("vectors", None)
            self.__dict__.pop("retriever", None)
            return self.vectors

        def reingest(source: str) -> None:
            path = Path(source)
            self._ingest_one(path, lambda event, info: None, IngestReport(), self.given_meta(path))

        s = self.settings
        return IndexParts(home=s.home, docstore=self.docstore, lexical=self.lexical,
                          store=open_store(s.chroma_path, s.chroma_url), collection=s.collection,
                          embedder=self.embedder, cache=lambda: self.cache, open_vectors=open_vectors,
                          reingest=reingest)

    def doctor(self, *, repair_damage: bool = False, wait: bool = True,
               progress: ProgressFn | None = None) -> DoctorReport:
        """Check that docstore, vectors and BM25 agree and can be read; with ``repair_damage`` rebuild what is broken
        from the docstore and the embedding cache (see :mod:`ragreports.index.doctor`)."""
        with self.writing(wait=wait, progress=progress):
            parts = self._parts()
            report, plan = diagnose(parts)
            if repair_damage and report.findings:
                report = repair(parts, report, plan)
            return report

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
            issuer: str | None = None, engine: str = "extractive", callbacks: Sequence = (),
            allow_flagged: bool = False) -> tuple[Answer, list[SearchResult]]:
        """Retrieve and answer. ``engine="llm"`` runs retrieval and answer as one LangChain chain
        (:func:`ragreports.answer.llm.ask_llm`); ``callbacks`` (LangChain handlers) see its model calls stream.
        ``allow_flagged`` lets text flagged as addressed to a model into the llm engine's context (never a
        citation)."""
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; use extractive or llm")
        model = self.chat_model(required=engine == "llm")
        if engine == "llm":
            s = self.settings
            return ask_llm(question, self.retriever, k=k or s.k, filters=self._filters(doc, year, issuer),
                           doc_text=lambda d: self.docstore.text(d)[0], chat_model=model, prompts_dir=s.prompts_dir,
                           context_tokens=s.llm_context_tokens, reasks=s.llm_reasks, callbacks=callbacks,
                           allow_flagged=allow_flagged)
        retrieved = self.search(question, k=k, doc=doc, year=year, issuer=issuer)
        texts = {r.doc_id: self.docstore.text(r.doc_id)[0] for r in retrieved}
        ans = answer_question(question, retrieved, texts, plan=self.retriever.last_plan, engine=engine,
                              chat_model=model, prompts_dir=self.settings.prompts_dir,
                              context_tokens=self.settings.llm_context_tokens, reasks=self.settings.llm_reasks,
                              allow_flagged=allow_flagged)
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
