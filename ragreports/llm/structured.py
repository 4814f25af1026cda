"""Structured output as a LangChain step: ``with_structured_output``, validation, bounded re-asks.

``structured_output(model, Schema, reasks=settings.llm_reasks)`` is a Runnable from a prompt value (or messages)
to a validated ``Schema`` instance. It appends the schema instruction (``prompts/json_repair.yaml``, ``system`` part)
to the system message and calls ``model.chat.with_structured_output(<JSON Schema of Schema>,
method=model.structured, include_raw=True)``: a JSON schema the server enforces where it can (``json_schema``), JSON
mode otherwise (``json_mode``). The reply is validated with pydantic (the parsed object, else the first JSON object
in the raw text: fences, prose and <think> blocks are tolerated); an invalid reply is re-asked with the validation
error (``json_repair`` ``user`` part) at most ``reasks`` times, then ``StructuredOutputError`` carries the attempts
and the last raw output. A reply cut at max_tokens is an invalid reply too (the openai SDK raises on it).
``stream=True`` calls the model in streaming mode, so callback handlers see the tokens. Each attempt runs with
``attempt`` in its run metadata (the trace records it, the fake reads it).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ragreports.data import prompts_dir as packaged_prompts_dir
from ragreports.errors import ConfigError, StructuredOutputError
from ragreports.llm.base import ChatModel
from ragreports.llm.prompts import PromptFile, load_prompt
from ragreports.llm.trace import log

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)


def extract_json(text: str) -> dict:
    """The first JSON object in a model reply: inside ``` fences first, then anywhere; prose is ignored."""
    cleaned = _THINK.sub("", text)
    dec = json.JSONDecoder()
    for chunk in [m.group(1) for m in _FENCE.finditer(cleaned)] + [cleaned]:
        for i, ch in enumerate(chunk):
            if ch != "{":
                continue
            try:
                obj, _ = dec.raw_decode(chunk, i)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    raise ValueError("the reply holds no JSON object" + (" (it looks cut off)" if "{" in cleaned else ""))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors(include_url=False)
        parts = [f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}" for e in errs[:8]]
        return "; ".join(parts) + (f"; and {len(errs) - 8} more" if len(errs) > 8 else "")
    return str(exc)


@functools.lru_cache(maxsize=8)
def _repair_prompt(prompts_dir: str) -> PromptFile:
    return load_prompt("json_repair", Path(prompts_dir))


def schema_json(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema(), ensure_ascii=False, separators=(",", ":"))


def _text(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content or [])


def validate_reply(schema: type[T], parsed: Any, raw_text: str) -> T:
    """``schema`` from the parsed reply (a dict), else from the first JSON object of the raw text."""
    if isinstance(parsed, dict):
        try:
            return schema.model_validate(parsed)
        except ValidationError:
            try:
                found = extract_json(raw_text)
            except ValueError:
                found = parsed
            if found == parsed:  # the raw text holds nothing else to try
                raise
    return schema.model_validate(extract_json(raw_text))


def structured_output(model: ChatModel, schema: type[T], *, reasks: int = 2, stream: bool = False,
                      prompts_dir: Path | None = None):
    """A Runnable: prompt value or messages -> validated ``schema`` (see the module docstring)."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, convert_to_messages
    from langchain_core.runnables import RunnableLambda

    if reasks < 0:
        raise ConfigError(f"reasks must be >= 0, got {reasks}")
    repair = _repair_prompt(str(prompts_dir or packaged_prompts_dir()))
    hint = repair.system.format(schema=schema_json(schema)).strip()
    steered = model.chat.with_structured_output(schema.model_json_schema(), method=model.structured,
                                                include_raw=True)

    def call(messages: list, config: dict) -> dict:
        try:
            if not stream:
                return steered.invoke(messages, config=config)
            out: dict = {}
            for chunk in steered.stream(messages, config=config):
                for k, v in chunk.items():
                    out[k] = out[k] + v if k == "raw" and k in out else v
            return out
        except Exception as exc:  # the openai SDK refuses to parse a reply cut at max_tokens: an invalid reply
            completion = getattr(exc, "completion", None)
            if type(exc).__name__ != "LengthFinishReasonError" or not getattr(completion, "choices", None):
                raise
            return {"raw": AIMessage(completion.choices[0].message.content or ""), "parsed": None}

    def run(value: Any, config: dict) -> T:
        msgs = list(value.to_messages() if hasattr(value, "to_messages") else convert_to_messages(value))
        if msgs and isinstance(msgs[0], SystemMessage):
            msgs[0] = SystemMessage(_text(msgs[0]).rstrip() + "\n\n" + hint)
        else:
            msgs.insert(0, SystemMessage(hint))
        prompt = (config.get("metadata") or {}).get("prompt")
        last, error = "", ""
        for attempt in range(1, reasks + 2):
            meta = {**(config.get("metadata") or {}), "attempt": attempt}
            out = call(msgs, {**config, "metadata": meta})
            last = _text(out.get("raw"))
            try:
                return validate_reply(schema, out.get("parsed"), last)
            except (ValueError, ValidationError) as exc:
                error = _describe(exc)
            log.info("structured reply from %s invalid (attempt %d/%d, prompt %s): %s", model.name, attempt,
                     reasks + 1, prompt, error)
            msgs = msgs + [AIMessage(last), HumanMessage(repair.user.format(error=error).strip())]
        what = f" for prompt {prompt}" if prompt else ""
        raise StructuredOutputError(f"{model.name} gave no valid {schema.__name__} JSON{what}: {error}", reasks + 1,
                                    last)

    return RunnableLambda(run, name=f"structured:{schema.__name__}")
