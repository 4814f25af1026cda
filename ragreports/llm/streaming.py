"""Live drafts of a structured reply while the model streams it (``ragreports ask --engine llm`` on a terminal).

``draft_handler(field, on_text)`` is a LangChain callback handler: it collects the tokens of each chat-model call,
reads the JSON so far with LangChain's ``parse_partial_json`` and calls ``on_text(text)`` with the value of the
string ``field`` whenever it changes. A new call (a re-ask) starts a new draft (``on_text("")``). A draft is a
preview only: what the CLI prints afterwards is the verified answer, or the refusal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def draft_handler(field: str, on_text: Callable[[str], None]):
    """A callback handler that shows the ``field`` of a streamed JSON reply as it grows (see the module doc)."""
    return _draft_class()(field, on_text)


def partial_field(text: str, field: str) -> str:
    """The string value of ``field`` in the (possibly cut) JSON object ``text`` so far, or ""."""
    from langchain_core.utils.json import parse_partial_json

    start = text.find("{")
    if start < 0:
        return ""
    try:
        obj = parse_partial_json(text[start:])
    except ValueError:
        return ""
    value = obj.get(field) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


@functools.cache
def _draft_class():
    from langchain_core.callbacks import BaseCallbackHandler

    class DraftHandler(BaseCallbackHandler):
        raise_error = False

        def __init__(self, field: str, on_text: Callable[[str], None]):
            self.field, self.on_text = field, on_text
            self.buffer, self.shown = "", ""

        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.buffer, self.shown = "", ""
            self.on_text("")

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.buffer += token
            text = partial_field(self.buffer, self.field)
            if text != self.shown:
                self.shown = text
                self.on_text(text)

    return DraftHandler
