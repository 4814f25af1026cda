"""``delete`` leaves no text of the document anywhere in the home folder: not in the docstore's free pages or WAL,
not in Chroma's tables or its write-ahead log, not in the BM25 files."""

from __future__ import annotations

import json
from pathlib import Path

from ragreports.workspace import Workspace

PHRASE = "独角兽密语行动计划XQZ"  # occurs only in the document that is deleted


def _holders(home: Path, needle: str) -> list[str]:
    """Files under ``home`` holding ``needle`` as UTF-8 or as JSON escapes (``\\u72ec…``, the BM25 vocabulary)."""
    forms = (needle.encode("utf-8"), json.dumps(needle)[1:-1].encode("ascii"))
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and any(f in p.read_bytes() for f in forms))


def test_delete_leaves_no_text_in_the_home(samples, hash_settings):
    secret = samples / "secret-plan.txt"
    secret.write_text("某市科学技术局2024年法治政府建设年度报告\n一、主要举措\n"
                      + "".join(f"全年推进{PHRASE}第{i}项工作，组织专题学习{i}次。\n" for i in range(40)), encoding="utf-8")
    ws = Workspace(hash_settings)
    assert not ws.ingest([samples]).errors
    home = hash_settings.home
    before = _holders(home, PHRASE)
    assert "docstore.sqlite3" in before or "docstore.sqlite3-wal" in before
    assert any(h.startswith("chroma") for h in before)
    assert any(h.startswith("bm25") for h in _holders(home, "独角兽"))  # a BM25 term of it
    assert ws.search(PHRASE, k=1)[0].doc_id == "secret-plan"
    ws.delete("secret-plan")
    assert _holders(home, PHRASE) == [] and _holders(home, "独角兽") == []
    fresh = Workspace(hash_settings)  # what is left still works, and agrees
    assert {d.doc_id for d in fresh.list()} == {p.stem for p in samples.glob("*-*-*.txt")}
    assert not fresh.doctor().findings
    assert all(r.doc_id != "secret-plan" for r in fresh.search(PHRASE, k=10))
