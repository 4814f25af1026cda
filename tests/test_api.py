"""The documented Python API, used exactly as README shows it: only names imported from ``ragreports``."""

from __future__ import annotations

import shutil

import pytest

import ragreports

from conftest import SAMPLES


def test_public_api_ingests_asks_extracts_and_summarizes(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copy(SAMPLES / "kunming-kjj-2024.txt", reports)
    settings = ragreports.load_settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", embedder="hash")
    ws = ragreports.Workspace(settings)

    report = ws.ingest([reports])
    assert isinstance(report, ragreports.IngestReport)
    assert [d.status for d in report.documents] == ["added"] and not report.errors
    doc_id = report.documents[0].doc_id

    answer, passages = ws.ask("2024年昆明市科技局登记技术合同多少项？")
    assert isinstance(answer, ragreports.Answer) and not answer.refused
    assert all(isinstance(p, ragreports.SearchResult) for p in passages)
    text = ws.get_document(doc_id).text
    assert answer.citations and all(text[c.start:c.end] == c.quote for c in answer.citations)

    doc, facts = ws.extract(doc_id)
    assert isinstance(doc, ragreports.Document) and isinstance(doc.meta, ragreports.Meta)
    assert doc.meta.year == 2024
    assert facts and all(isinstance(f, ragreports.Fact) and doc.text[f.start:f.end] == f.quote for f in facts)

    brief = ws.summarize(doc_id)
    assert isinstance(brief, ragreports.Brief)
    assert brief.measures and brief.model_dump(mode="json")["doc_id"] == doc_id

    health = ws.doctor(repair_damage=True)
    assert isinstance(health, ragreports.DoctorReport) and not health.damaged and not health.findings


def test_public_api_errors_say_what_to_do(tmp_path):
    ws = ragreports.Workspace(ragreports.load_settings(home=tmp_path / "home", embedder="hash"))
    with pytest.raises(ragreports.DocumentNotFoundError, match="ragreports list") as exc:
        ws.get_document("no-such-report")
    assert isinstance(exc.value, ragreports.RagReportsError) and exc.value.exit_code == 2
    with pytest.raises(ragreports.ConfigError, match="unknown embedder"):
        _ = ragreports.Workspace(ragreports.load_settings(home=tmp_path / "h2", embedder="nope")).embedder
