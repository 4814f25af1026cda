"""The lexical index: BM25 (bm25s) over jieba terms of the chunks of ready documents, persisted in the home.

:func:`lexical_terms` makes the terms of chunks and of queries alike (one segmenter for both).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import unicodedata
import uuid
from pathlib import Path

import numpy as np

from ragreports.index.docstore import DocStore
from ragreports.index.locks import FileLock, storage_lock
from ragreports.text.numbers import iter_quantities, match_unit, parse_chinese_numeral
from ragreports.text.numbers import rules as number_rules
from ragreports.types import Chunk, Meta

log = logging.getLogger("ragreports.index")

_jieba_ready = False


QUANTITY_TOKEN = "#"  # prefix of the "a count of <unit>" terms: 七十六条 / 76条 / 多少条 -> "#条"
_ASKED = re.compile(r"(?:多少|几)(?:个(?=[\u4e00-\u9fff]))?")


def _quantity_terms(text: str) -> tuple[str, list[str]]:
    """The text with Chinese-numeral counts written in Arabic digits (七十六条 -> 76条, so a query ``76条``
    matches and jieba does not split 七|十六条), and one ``#<unit>`` term per count in it (``5次`` -> ``#次``)
    and per count a question asks for (``多少条`` / ``几名`` -> ``#条`` / ``#名``). Ordinals (第三条) and
    calendar years (2024年) are not counts. Units and numerals are the data of :mod:`ragreports.text.numbers`."""
    year_units = number_rules().year_units
    parts: list[str] = []
    extra: list[str] = []
    pos = 0
    for q in iter_quantities(text):
        if (q.num_start > 0 and text[q.num_start - 1] == "第") or (q.unit in year_units and q.value >= 1000):
            continue
        extra.append(QUANTITY_TOKEN + q.unit)
        value = parse_chinese_numeral(q.numeral) if q.chinese else None
        if value is not None:
            parts += [text[pos:q.num_start], f" {value}"]
            pos = q.num_end
    parts.append(text[pos:])
    for m in _ASKED.finditer(text):
        i = m.end()
        scale = number_rules().scale_re.match(text, i)
        unit = match_unit(text, scale.end() if scale else i)
        if unit is not None:
            extra.append(QUANTITY_TOKEN + unit[1])
        elif m.group(0).endswith("个"):
            extra.append(QUANTITY_TOKEN + "个")
    return "".join(parts), extra


def lexical_terms(text: str) -> list[str]:
    """BM25 terms of a (Simplified) text: jieba tokens, lower-cased, punctuation and whitespace dropped, Chinese
    numerals of counts in digits, plus one ``#<unit>`` term per count (see :func:`_quantity_terms`). Used for
    both chunks and queries, so ``共有多少条`` meets ``共设十章七十六条`` on the term ``#条``."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        _jieba_ready = True
    body, extra = _quantity_terms(text)
    out = []
    for tok in jieba.lcut(body):
        tok = tok.strip().lower()
        if tok and not all(unicodedata.category(c)[0] in "PZS" for c in tok):
            out.append(tok)
    return out + extra


def chunk_terms(meta: Meta, chunk: Chunk) -> list[str]:
    """The BM25 terms of a chunk: its text's, and its header's, what the text alone may not say: the report's place,
    the years the chunk is about, its section path (measured on the wide suite: QA 0.971 -> 0.974, recall@5 0.991 ->
    0.995; the dense side embeds the text alone)."""
    years = "".join(f"{y}年" for y in chunk.years)
    return lexical_terms(f"{meta.region or ''} {years} {chunk.section} {chunk.text}")


class LexicalIndex:
    """BM25 (bm25s) over the chunks of ready documents, persisted next to the docstore.

    The files are built in a private folder and swapped in under the home's storage lock, so a reader never loads a
    half-written index and two processes rebuilding at once cannot collide. When the index cannot be saved (a full
    disk, a read-only home) the rebuilt one is used from memory."""

    def __init__(self, directory: Path, docstore: DocStore, lock: FileLock | None = None):
        self.dir = directory
        self.docstore = docstore
        self.lock = lock or storage_lock(directory.parent)
        self._bm25 = None
        self._ids: list[tuple[str, int]] = []
        self._gen = -1

    def _load_or_build(self) -> None:
        gen = self.docstore.generation
        if self._bm25 is not None and self._gen == gen:
            return
        if self._gen == gen and not self._ids:  # built empty for this generation
            return
        with self.lock.hold():
            if self._load(gen):
                return
        self.rebuild()

    def _load(self, gen: int) -> bool:
        meta_path = self.dir / "ids.json"
        if not meta_path.exists():
            return False
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") != gen:
                return False
            import bm25s

            ids = [tuple(x) for x in meta["ids"]]
            self._bm25 = bm25s.BM25.load(str(self.dir / "bm25"), show_progress=False) if ids else None
            self._ids = ids  # type: ignore[assignment]
            self._gen = gen
            return True
        except (OSError, ValueError, KeyError):
            log.warning("BM25 index at %s unreadable; rebuilding", self.dir)
            return False

    def state(self) -> dict:
        """What is on disk, for ``doctor``: ``generation`` and ``ids`` of the saved index (None when unreadable)."""
        with self.lock.hold():
            try:
                meta = json.loads((self.dir / "ids.json").read_text())
                ids = [tuple(x) for x in meta["ids"]]
                if ids and not (self.dir / "bm25").exists():
                    raise OSError("bm25 folder missing")
                return {"generation": meta.get("generation"), "ids": ids}
            except (OSError, ValueError, KeyError, TypeError):
                return {"generation": None, "ids": None}

    def rebuild(self) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)

        rows = self.docstore.ready_terms()
        gen = self.docstore.generation
        self._ids = [(d, i) for d, i, _ in rows]
        corpus = [t.split(" ") if t else [] for _, _, t in rows]
        if corpus:
            bm = bm25s.BM25()
            bm.index(corpus, show_progress=False)
            self._bm25 = bm
        else:
            self._bm25 = None
        self._gen = gen
        try:
            self._save(gen)
        except OSError as exc:  # a full disk or a read-only home: searching still works from memory
            log.warning("could not save the BM25 index to %s (%s); using it from memory", self.dir,
                        exc.strerror or exc)

    def _save(self, gen: int) -> None:
        tmp = self.dir.with_name(f"{self.dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=True)
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25"), show_progress=False)
            (tmp / "ids.json").write_text(json.dumps({"generation": gen, "ids": self._ids}))
            with self.lock.hold():
                try:  # a newer index saved meanwhile by another process wins
                    if json.loads((self.dir / "ids.json").read_text()).get("generation", -1) > gen:
                        return
                except (OSError, ValueError):
                    pass
                old = self.dir.with_name(f"{self.dir.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
                if self.dir.exists():
                    os.replace(self.dir, old)
                os.replace(tmp, self.dir)
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for pattern in (f"{self.dir.name}.tmp*", f"{self.dir.name}.old*"):  # left behind by killed processes
            for stale in self.dir.parent.glob(pattern):
                if _older_than(stale, 3600):
                    shutil.rmtree(stale, ignore_errors=True)

    def query(self, terms: list[str], n: int, doc_ids: set[str] | None) -> list[tuple[tuple[str, int], float]]:
        self._load_or_build()
        if self._bm25 is None or not terms:
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float64)
        if doc_ids is not None:
            mask = np.array([d in doc_ids for d, _ in self._ids], dtype=bool)
            scores = np.where(mask, scores, 0.0)
        order = np.argsort(-scores, kind="stable")[:n]
        return [(self._ids[i], float(scores[i])) for i in order if scores[i] > 0]


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
