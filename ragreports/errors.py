"""One base exception and a few specific ones. Messages say what to do next."""

from __future__ import annotations


class RagReportsError(Exception):
    """Base class of every error ragreports raises on purpose. The CLI turns it into a clean message."""

    exit_code = 1


class ConfigError(RagReportsError):
    """Bad settings or usage: wrong provider string, missing key, incompatible index."""

    exit_code = 2


class LoadError(RagReportsError):
    """A file could not be read or decoded into text."""


class EmptyDocumentError(LoadError):
    """The file was read but holds no report text after cleaning."""


class MetadataError(ConfigError):
    """The metadata stated for one report (its sidecar ``REPORT.meta.yaml`` or ``ingest --meta``) is invalid: that
    file fails, a batch goes on with the others."""


class IndexMismatchError(ConfigError):
    """The index was built with another embedder (name or dimension) than the one configured."""


class DocumentNotFoundError(RagReportsError):
    """No indexed document matches the given doc id or source path (a usage error)."""

    exit_code = 2


class IndexBusyError(RagReportsError):
    """Another process is writing the index (``ingest``/``delete``/``doctor --repair``) and we were told not to wait."""


class IndexDamagedError(RagReportsError):
    """The on-disk index is damaged (e.g. a process died while writing the vectors); ``ragreports doctor --repair``."""


class DiskFullError(RagReportsError):
    """No space left on the device holding the index or the cache; the batch stopped cleanly."""


class ProviderError(RagReportsError):
    """A model provider (LLM or embedder) failed: unreachable, model not found, timed out."""


class StructuredOutputError(ProviderError):
    """The model's reply could not be parsed/validated after the bounded number of re-asks."""

    def __init__(self, message: str, attempts: int, last_output: str):
        super().__init__(f"{message} (after {attempts} attempt(s); last output: {last_output[:500]!r})")
        self.attempts = attempts
        self.last_output = last_output


class GoldFormatError(ConfigError):
    """A gold annotation file does not follow spec/gold-format.md."""
