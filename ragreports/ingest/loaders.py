"""Loading: files on disk -> :class:`RawDocument` (decoded text, markup flattened, nothing cleaned yet).

``discover`` expands the paths a user gives into the files to load; ``load_file`` reads one file. Text files
(.txt .md .html .htm) are decoded with :func:`decode_text` (BOM, UTF-8, UTF-16, then GB18030 vs Big5 chosen by
how plausible the decoded Chinese is); PDF goes through pypdf and DOCX through python-docx, both imported
lazily. Every failure is a :class:`LoadError` whose message says what to do.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from ragreports.errors import EmptyDocumentError, LoadError
from ragreports.text.cleaning import BLOCK_TAGS
from ragreports.text.mojibake import plausibility
from ragreports.types import RawDocument

SUPPORTED = {".txt", ".md", ".html", ".htm", ".pdf", ".docx"}
_FORMATS = {".txt": "txt", ".md": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx"}
_CONVERT_HINT = "convert it to .docx/.pdf/.txt"

# -- discovery ----------------------------------------------------------------------------------------------


def discover(paths: Iterable[str | Path], skipped: list[tuple[str, str]] | None = None
             ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files and folders into the files to load (absolute, deduplicated, folders walked recursively in
    sorted order, hidden files and folders skipped), plus ``(source, error)`` for paths that do not exist or cannot
    be read (a file, a folder given or met in a walk) and files of an unsupported type named explicitly.
    Unsupported files found inside a folder are not errors: they are appended to ``skipped`` (``(source,
    reason)``) when a list is given."""
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            files.append(rp)

    for given in paths:
        p = Path(given).expanduser()
        try:
            exists, is_dir = p.exists(), p.is_dir()
        except OSError as exc:  # a folder on the way cannot be searched
            errors.append((str(given), f"cannot be reached ({exc.strerror or exc}); make its folders readable "
                                       "(e.g. chmod +rx) and retry"))
            continue
        if not exists:
            errors.append((str(given), "no such file or folder; check the path"))
        elif is_dir:
            found, walk_errors, others = _walk(p)
            errors += walk_errors
            if skipped is not None:
                skipped += others
            for f in found:
                add(f)
        elif p.suffix.lower() in SUPPORTED:
            add(p)
        else:
            ext = p.suffix.lower() or "(no extension)"
            errors.append((str(given), f"unsupported file type {ext}; {_CONVERT_HINT}"))
    return files, errors


def _walk(folder: Path) -> tuple[list[Path], list[tuple[str, str]], list[tuple[str, str]]]:
    """Supported files under ``folder`` sorted by relative path, the folders that could not be read, and the
    unsupported files met; hidden entries and symlinked folders are not entered (no cycles)."""
    out: list[Path] = []
    errors: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []

    def unreadable(exc: OSError) -> None:
        errors.append((str(exc.filename or folder), f"folder cannot be read ({exc.strerror or exc}); its files "
                                                    "were skipped; make it readable (e.g. chmod +rx) and retry"))

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if n.startswith("."):
                continue
            if Path(n).suffix.lower() in SUPPORTED:
                out.append(Path(root) / n)
            else:
                others.append((str(Path(root) / n), f"unsupported file type {Path(n).suffix.lower() or '(none)'}; "
                                                     f"{_CONVERT_HINT}"))
    return sorted(out, key=lambda f: f.relative_to(folder).parts), errors, others


# -- loading ------------------------------------------------------------------------------------------------


def load_file(path: str | Path) -> RawDocument:
    """Read one file into a :class:`RawDocument`. Raises :class:`LoadError` (or :class:`EmptyDocumentError`)
    with a message that says how to fix the file."""
    p = Path(path).expanduser().resolve()
    ext = p.suffix.lower()
    if ext not in SUPPORTED:
        raise LoadError(f"{p}: unsupported file type {ext or '(no extension)'}; {_CONVERT_HINT}")
    data = _read_bytes(p)
    if not data.strip():
        raise EmptyDocumentError(f"{p}: the file is empty; export the report text into it or remove it")
    fmt = _FORMATS[ext]
    if fmt == "pdf":
        text, encoding = _pdf_text(p, data), "binary:pdf"
    elif fmt == "docx":
        text, encoding = _docx_text(p, data), "binary:docx"
    elif fmt == "html":
        text, encoding = _html_text(p, data)
    else:
        text, encoding = decode_text(data, source=str(p))
    if not text.strip():
        raise EmptyDocumentError(f"{p}: no text found in the {fmt} file; check that it holds the report text")
    return RawDocument(source=str(p), text=text, encoding=encoding, format=fmt,
                       sha256=hashlib.sha256(data).hexdigest())


def _read_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except PermissionError as exc:
        raise LoadError(f"{p}: permission denied; make the file readable (e.g. chmod +r) and retry") from exc
    except FileNotFoundError as exc:
        raise LoadError(f"{p}: no such file; check the path") from exc
    except IsADirectoryError as exc:
        raise LoadError(f"{p}: is a folder; pass it to discover() or give a file") from exc
    except OSError as exc:
        raise LoadError(f"{p}: cannot read the file ({exc.strerror or exc}); check the disk and the path") from exc


# -- text encodings -----------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BAD_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MIN_PLAUSIBLE = 0.6  # share of non-ASCII characters that must be common hanzi / CJK punctuation


def decode_text(data: bytes, source: str = "<bytes>") -> tuple[str, str]:
    """Decode report bytes; returns ``(text, encoding)``.

    Order: BOM; UTF-16 LE/BE without BOM when many bytes are NUL (the more plausible of the two); strict
    UTF-8 (unless it yields control characters); then every legacy candidate that decodes strictly
    (GB18030 — a superset of GBK/GB2312 —, Big5, CP950, BOM-less UTF-16) is scored with
    :func:`plausibility` and the most plausible wins (ties prefer GB18030). Binary data raises LoadError."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data[len(bom):].decode(enc), source), enc
            except UnicodeDecodeError as exc:
                raise _undecodable(source, f"it starts with a {enc} byte-order mark but is not valid {enc}") from exc
    if _looks_utf16(data):
        decoded = _best_decode(data, ["utf-16-le", "utf-16-be"])
        if decoded is not None and decoded[0] >= _MIN_PLAUSIBLE:
            return _checked(decoded[2], source), decoded[1]
    try:
        utf8: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = None
    if utf8 is not None and not _has_controls(utf8, tolerance=0.005, floor=0):
        return utf8, "utf-8"
    best = _best_decode(data, _legacy_candidates(data))
    if best is not None and best[0] >= _MIN_PLAUSIBLE and not _has_controls(best[2]):
        return best[2], best[1]
    if utf8 is not None:  # valid UTF-8 with a few stray control characters still beats a guess
        return _checked(utf8, source), "utf-8"
    if best is not None and best[0] >= _MIN_PLAUSIBLE:
        return _checked(best[2], source), best[1]
    guess = f" (best guess {best[1]} gave unreadable text)" if best else ""
    raise _undecodable(source, f"it is not UTF-8, UTF-16, GB18030/GBK or Big5 text{guess}")


def _best_decode(data: bytes, encodings: list[str]) -> tuple[float, str, str] | None:
    """``(plausibility, encoding, text)`` of the most plausible strict decode; earlier encodings win ties."""
    best: tuple[float, str, str] | None = None
    for enc in encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        score = plausibility(text)
        if best is None or score > best[0]:
            best = (score, enc, text)
    return best


def _legacy_candidates(data: bytes) -> list[str]:
    cands = ["gb18030", "big5", "cp950"]
    if len(data) % 2 == 0:
        cands += ["utf-16-le", "utf-16-be"]
    return cands


def _looks_utf16(data: bytes) -> bool:
    """UTF-16 without BOM: ASCII characters (and hanzi such as U+4E00) leave NUL bytes in the code units."""
    n = len(data)
    return n >= 2 and n % 2 == 0 and data.count(0) >= 0.1 * n


def _has_controls(text: str, tolerance: float = 0.01, floor: int = 2) -> bool:
    """More control characters (other than tab/newline/CR/FF) than ``tolerance`` of the text allows."""
    head = text[:20000]
    return len(_BAD_CONTROL.findall(head)) > max(floor, int(len(head) * tolerance))


def _checked(text: str, source: str) -> str:
    """Reject binary data that happened to decode (NULs and control characters are not report text)."""
    if _has_controls(text):
        raise _undecodable(source, "it contains control characters, so it looks like a binary file")
    return text


def _undecodable(source: str, why: str) -> LoadError:
    return LoadError(f"{source}: cannot decode the text: {why}; re-save the file as UTF-8 and retry")


# -- HTML ---------------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030",
                    "big5": "big5", "big5-hkscs": "big5hkscs", "x-big5": "big5"}


def _html_text(p: Path, data: bytes) -> tuple[str, str]:
    text, encoding = _decode_html(p, data)
    return html_to_text(text), encoding


def _decode_html(p: Path, data: bytes) -> tuple[str, str]:
    """Decode HTML bytes: a BOM wins, then valid UTF-8 (pages re-saved as UTF-8 often keep their old
    ``charset=gb2312``), then the declared <meta charset>, then detection."""
    if not any(data.startswith(bom) for bom, _ in _BOMS):
        try:
            text = data.decode("utf-8")
            if not _has_controls(text):
                return text, "utf-8"
        except UnicodeDecodeError:
            pass
        m = _META_CHARSET.search(data[:4096])
        if m:
            declared = m.group(1).decode("ascii").lower()
            enc = _CHARSET_ALIASES.get(declared, declared)
            try:
                return data.decode(enc), enc
            except (LookupError, UnicodeDecodeError):
                pass  # a wrong or unknown declaration: fall back to detection
    return decode_text(data, source=str(p))


_SKIP_TAGS = frozenset([
    "script", "style", "noscript", "template", "head", "nav", "aside", "footer", "select", "option", "button",
    "iframe", "svg", "canvas", "object", "embed", "textarea", "menu", "dialog",
])
_VOID_TAGS = frozenset([
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
    "wbr",
])
_CELL_TAGS = frozenset({"td", "th"})
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks, table cells are separated by a tab."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip: list[str] = []  # open elements whose content is dropped
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.skip:  # a <head> that was never closed ends here
            del self.skip[self.skip.index("head"):]
        if tag in _SKIP_TAGS or dict(attrs).get("role") == "navigation":
            if tag not in _VOID_TAGS:
                self.skip.append(tag)
            return
        if tag == "pre":
            self.pre += 1
        self._boundary(tag, closing=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.skip:
            self._boundary(tag, closing=True)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag in self.skip:
                while self.skip and self.skip.pop() != tag:
                    pass
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
        self._boundary(tag, closing=True)

    def _boundary(self, tag: str, closing: bool) -> None:
        if self.skip:
            return
        if tag in BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in _CELL_TAGS and closing:
            self.parts.append("\t")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.parts.append(data if self.pre else _HTML_SPACE.sub(" ", data))


def html_to_text(markup: str) -> str:
    """Visible text of an HTML page: one line per block element (p, div, br, li, h1-h6, tr ...), table cells
    separated by tabs, empty lines dropped; head, script, style and navigation-like elements are left out."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (line.strip(" \t") for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


# -- PDF and DOCX -------------------------------------------------------------------------------------------


def _pdf_text(p: Path, data: bytes) -> str:
    try:
        from pypdf import PdfReader
    except ImportError as exc:  # pragma: no cover - pypdf is a declared dependency
        raise LoadError(f"{p}: reading PDF needs the 'pypdf' package; pip install pypdf") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(f"{p}: the PDF is password-protected; remove the password (save an unprotected copy)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"{p}: broken PDF ({type(exc).__name__}: {exc}); re-export or re-download it") from exc
    text = "\n".join(pages)
    if len(re.sub(r"\s+", "", text)) < 10:
        raise LoadError(f"{p}: the PDF has no text layer (scanned PDF?); run OCR first (e.g. ocrmypdf -l chi_sim) "
                        "and load the OCR'd file")
    return text


def _docx_text(p: Path, data: bytes) -> str:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError as exc:  # pragma: no cover - python-docx is a declared dependency
        raise LoadError(f"{p}: reading DOCX needs the 'python-docx' package; pip install python-docx") from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise LoadError(f"{p}: broken or not a real .docx ({type(exc).__name__}); open it in Word/WPS/LibreOffice "
                        "and save it again as .docx") from exc
    lines: list[str] = []
    for el in document.element.body.iterchildren():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(el, document).text)
        elif tag == "tbl":
            lines.extend(_table_lines(Table(el, document)))
    return "\n".join(lines)


def _table_lines(table) -> list[str]:
    lines = []
    seen: dict[int, object] = {}  # id -> cell element; holding the element keeps its id from being reused
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is repeated for every grid cell it spans
                continue
            seen[id(cell._tc)] = cell._tc
            cells.append(cell.text.replace("\n", " ").strip())
        lines.append("\t".join(cells))
    return lines
