"""ragreports: grounded answers, standard briefs and checked facts from report files.

The Python API (everything below is importable from ``ragreports``; names load on first use, so ``import
ragreports`` stays cheap and nothing connects, downloads or loads a model at import time)::

    from ragreports import Workspace, load_settings

    ws = Workspace(load_settings(home="~/reports-index"))
    ws.ingest(["reports/"])                                  # -> IngestReport
    answer, passages = ws.ask("2024年昆明市科技局登记技术合同多少项？")   # -> Answer, [SearchResult]
    doc, facts = ws.extract("kunming-kjj-2024")              # -> Document (with .meta), [Fact]
    brief = ws.summarize("kunming-kjj-2024")                 # -> Brief (pydantic; .model_dump(mode="json"))
    run = run_eval("eval/suites/dev", load_settings())       # -> EvalRun (.passed, .scores)

Errors are subclasses of :class:`RagReportsError`; ``exc.exit_code`` is what the CLI exits with.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Workspace": "ragreports.workspace", "IngestReport": "ragreports.workspace", "DocStatus": "ragreports.workspace",
    "Settings": "ragreports.config", "load_settings": "ragreports.config",
    "Answer": "ragreports.types", "Chunk": "ragreports.types", "Citation": "ragreports.types",
    "Document": "ragreports.types", "Evidence": "ragreports.types", "Fact": "ragreports.types",
    "Meta": "ragreports.types", "SearchResult": "ragreports.types",
    "Brief": "ragreports.brief.model", "BriefItem": "ragreports.brief.model",
    "EvalRun": "ragreports.evaluation.runner", "run_eval": "ragreports.evaluation.runner",
    "RagReportsError": "ragreports.errors", "ConfigError": "ragreports.errors", "LoadError": "ragreports.errors",
    "EmptyDocumentError": "ragreports.errors", "DocumentNotFoundError": "ragreports.errors",
    "IndexMismatchError": "ragreports.errors", "ProviderError": "ragreports.errors",
    "StructuredOutputError": "ragreports.errors", "GoldFormatError": "ragreports.errors",
    "IndexBusyError": "ragreports.errors", "IndexDamagedError": "ragreports.errors",
    "DiskFullError": "ragreports.errors", "MetadataError": "ragreports.errors",
    "DoctorReport": "ragreports.index.doctor",
}

__all__ = ["__version__", *_EXPORTS]  # noqa: PLE0604 - the keys of _EXPORTS are strings


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ragreports' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
