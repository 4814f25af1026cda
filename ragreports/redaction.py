"""Secrets never leave the process: the one redaction every exit applies.

:func:`redact` masks, in any text:

- every secret registered with :func:`register_secret` (the API key and URL passwords from the settings; a server
  that echoes one back is caught here, whatever the shape of its reply);
- key-like tokens: ``sk-…`` keys, ``Bearer …`` / ``Basic …`` credentials, ``Authorization: …`` headers,
  ``api_key=…`` / ``"api_key": "…"`` / ``token=…`` assignments;
- the user-info of URLs (``https://user:password@host`` -> ``https://***@host``).

It is applied at the exits: the CLI wraps stdout and stderr in :class:`RedactingStream` (errors, logs, warnings,
tracebacks, ``--json`` and every printed result pass through it), rendered briefs are redacted by
:mod:`ragreports.brief.render`, and providers redact the messages of the errors they raise. Library users who log
through their own handlers can add :class:`RedactingFilter` to them.

The bottom layer of the package (no imports from ragreports), so every stage can use it.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET = 4  # shorter registered values would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None

_TOKEN = r"[A-Za-z0-9_\-.~+/=]{6,}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # URL user-info: scheme://user:password@host or scheme://token@host
    (re.compile(r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/@:]*(?::[^\s/@]*)?@"), r"\g<keep>" + MASK + "@"),
    # an Authorization header, whatever its scheme
    (re.compile(r"(?P<keep>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:Bearer|Basic|Token)\s+)?"
                r"[^\s\"',;]{4,}", re.I), r"\g<keep>" + MASK),
    # api_key=..., "api_key": "...", x-api-key: ..., access_token=..., password=..., secret=...
    (re.compile(r"(?P<keep>\b(?:x-)?(?:api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|token|"
                r"password|passwd|secret|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic)\s+)?)"
                r"[^\s\"',;&}]{4,}", re.I),
     r"\g<keep>" + MASK),
    (re.compile(rf"(?P<keep>\b(?:Bearer|Basic)\s+){_TOKEN}"), r"\g<keep>" + MASK),
    (re.compile(r"(?P<keep>\bsk-)[A-Za-z0-9_\-]{6,}"), r"\g<keep>" + MASK),
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in anything :func:`redact` sees (values under 4 characters are ignored)."""
    global _secret_re
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        # longest first, so a secret that contains another one is masked whole
        _secret_re = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def register_url_secrets(url: str | None) -> None:
    """Register the user name and password of a URL (and both together) as secrets."""
    if not url:
        return
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    for value in (parts.password, parts.username):
        register_secret(value)
        register_secret(urllib.parse.unquote(value) if value else None)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with registered secrets, the given ``secrets`` and anything key-like masked."""
    if not text:
        return text
    for s in secrets:
        if s and len(s) >= _MIN_SECRET:
            text = text.replace(s, MASK)
    rx = _secret_re
    if rx is not None:
        text = rx.sub(MASK, text)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj


def display_url(url: str) -> str:
    """A URL for messages: without user-info (``https://user:pw@host/v1`` -> ``https://host/v1``)."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class RedactingStream(io.TextIOBase):
    """A text stream that redacts whole lines before they reach the wrapped stream.

    Text is held until a line is complete (a secret never spans lines), then redacted and written; ``flush`` writes
    what is held. Attributes such as ``isatty``, ``fileno`` and ``encoding`` are those of the wrapped stream, so
    terminal detection (rich, click) is unchanged."""

    def __init__(self, stream):
        super().__init__()
        self._stream = stream
        self._held = ""
        self._lock = threading.RLock()

    @property
    def wrapped(self):
        return self._stream

    def write(self, s: str) -> int:
        with self._lock:
            text = self._held + s
            cut = text.rfind("\n") + 1
            self._held = text[cut:]
            if cut:
                self._stream.write(redact(text[:cut]))
            if len(self._held) > 65536:  # a very long line without an end: write it anyway
                self._stream.write(redact(self._held))
                self._held = ""
        return len(s)

    def flush(self) -> None:
        with self._lock:
            if self._held:
                self._stream.write(redact(self._held))
                self._held = ""
            self._stream.flush()

    def close(self) -> None:  # never close the real stdout/stderr
        self.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class RedactingFilter(logging.Filter):
    """A logging filter (for handlers) that redacts the formatted message and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave the record to logging's own error handling
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
