"""Structured output: ask for JSON matching a pydantic schema, validate, re-ask a bounded number of times.

``complete_structured(model, messages, Schema, reasks=settings.llm_reasks, prompt=p.ref)`` asks in JSON mode with
the schema appended to the system message (``prompts/json_repair.yaml``), extracts the JSON object (tolerates
``` fences, prose, <think> blocks), validates with pydantic, re-asks with the validation error at most ``reasks``
times, then raises ``StructuredOutputError`` carrying ``attempts`` and ``last_output``.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ragreports.data import prompts_dir as packaged_prompts_dir
from ragreports.errors import ConfigError, StructuredOutputError
from ragreports.llm.base import ChatModel, Messages, log
from ragreports.llm.prompts import PromptFile, load_prompt

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


def complete_structured(model: ChatModel, messages: Messages, schema: type[T], *, reasks: int = 2,
                        prompt: str | None = None, max_tokens: int | None = None,
                        prompts_dir: Path | None = None) -> T:
    """Ask for JSON matching ``schema``; validate; re-ask at most ``reasks`` times; else StructuredOutputError.

    The schema instruction (``json_repair`` prompt, ``system`` part, from ``prompts_dir`` or the packaged
    prompts) is appended to the first system message; each re-ask appends the bad reply and the correction
    (``user`` part) with the validation error. Provider failures propagate as ProviderError.
    """
    if reasks < 0:
        raise ConfigError(f"reasks must be >= 0, got {reasks}")
    repair = _repair_prompt(str(prompts_dir or packaged_prompts_dir()))
    hint = repair.system.format(schema=schema_json(schema)).strip()
    msgs = [dict(m) for m in messages]
    if msgs and msgs[0].get("role") == "system":
        msgs[0]["content"] = msgs[0]["content"].rstrip() + "\n\n" + hint
    else:
        msgs.insert(0, {"role": "system", "content": hint})
    kw = {"prompt": prompt} if prompt else {}
    last, error = "", ""
    for attempt in range(1, reasks + 2):
        last = model.complete(msgs, json_mode=True, max_tokens=max_tokens, **kw)
        try:
            return schema.model_validate(extract_json(last))
        except (ValueError, ValidationError) as exc:
            error = _describe(exc)
        log.info("structured reply from %s invalid (attempt %d/%d, prompt %s): %s", model.name, attempt,
                 reasks + 1, prompt, error)
        msgs = msgs + [{"role": "assistant", "content": last},
                       {"role": "user", "content": repair.user.format(error=error).strip()}]
    what = f" for prompt {prompt}" if prompt else ""
    raise StructuredOutputError(f"{model.name} gave no valid {schema.__name__} JSON{what}: {error}", reasks + 1, last)

