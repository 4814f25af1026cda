"""Local GGUF models (``gguf:PATH``): an in-process llama.cpp OpenAI-compatible server (PyPI ``xllamacpp``, the
optional extra ``pip install 'ragreports[gguf]'``) on 127.0.0.1 at a free port.

:func:`ragreports.providers.get_chat_model` starts a :class:`GGUFServer` and talks to it through LangChain's
``ChatOpenAI``; ``model.close()`` (or interpreter exit) stops the server. ``xllamacpp`` is imported on first use.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import urllib.request
from pathlib import Path

from ragreports.errors import ConfigError, ProviderError
from ragreports.llm.trace import log


def _default_threads() -> int:
    """Half the usable CPUs: llama.cpp wants physical cores, and oversubscribed OpenMP threads spin (measured 4x
    slower with 2 threads than 1 on a busy 2-vCPU machine)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, n // 2)


class GGUFServer:
    """An in-process llama.cpp OpenAI-compatible server (xllamacpp) on 127.0.0.1 at a free port."""

    def __init__(self, path: str | Path, *, n_ctx: int = 4096, threads: int | None = None):
        self.path = Path(path).expanduser()
        self.n_ctx, self.threads = n_ctx, threads
        self.base_url: str | None = None
        self.startup_s: float | None = None
        self._server = None

    def start(self, timeout: float = 120.0) -> GGUFServer:
        if not self.path.is_file():
            raise ConfigError(f"GGUF model file {self.path} not found; give gguf:/path/to/model.gguf")
        with open(self.path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ConfigError(f"{self.path} is not a GGUF model file")
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError("gguf:PATH needs the optional llama.cpp bindings: pip install 'ragreports[gguf]' "
                              "(or pip install xllamacpp)") from None
        p = xllamacpp.CommonParams()
        p.model.path = str(self.path)
        p.model_alias = {self.path.stem}
        p.n_ctx = self.n_ctx
        p.port = 0  # the OS picks a free port; listening_address tells which
        p.hostnames = ["127.0.0.1"]
        p.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1
        p.warmup = False
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = self.threads or _default_threads()
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(p)
        except Exception as exc:
            raise ProviderError(f"llama.cpp could not load {self.path} ({exc}); check it is a chat model GGUF "
                                "that this xllamacpp version supports") from None
        root = self._server.listening_address.rstrip("/")
        self.base_url = root + "/v1"
        atexit.register(self.close)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(root + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise ProviderError(f"the llama.cpp server for {self.path} did not become healthy in {timeout:g}s")
            time.sleep(0.1)
        self.startup_s = time.perf_counter() - t0
        log.info("llama.cpp server for %s ready at %s in %.2fs", self.path.name, self.base_url, self.startup_s)
        return self

    @property
    def running(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        """Stop the server (idempotent): dropping the last reference runs llama.cpp's shutdown."""
        server, self._server = self._server, None
        if server is not None:
            atexit.unregister(self.close)
            del server

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
