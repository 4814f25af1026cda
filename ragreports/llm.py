"""Chat-model providers behind one small protocol, chosen by a string.

PLACEHOLDER (owned by the LLM helper). The contract other modules rely on:

    class ChatModel(Protocol):
        name: str                                   # "fake", "openai:gpt-4o-mini", "gguf:/path/model.gguf"
        def complete(self, messages: list[dict[str, str]], *, json_mode: bool = False,
                     max_tokens: int | None = None) -> str
        def to_langchain(self) -> "BaseChatModel"   # for LCEL chains: prompt | model | parser

    get_chat_model(settings, spec: str | None = None) -> ChatModel | None   # None when spec == "none"
    complete_structured(model, messages, schema: type[BaseModel], *, reasks: int = 2) -> BaseModel
        # parse JSON, validate with pydantic, re-ask with the validation error a bounded number of times,
        # then raise StructuredOutputError(attempts, last_output)
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]], *, json_mode: bool = False, max_tokens: int | None = None) -> str:
        ...

    def to_langchain(self):
        ...
