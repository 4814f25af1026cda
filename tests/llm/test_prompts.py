"""Every bundled prompt file loads and renders; the loader rejects malformed prompt files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ragreports.config import Settings
from ragreports.data import prompts_dir
from ragreports.errors import ConfigError
from ragreports.llm.prompts import PromptFile, load_all, load_prompt, template_variables

PROMPTS_DIR = Settings().prompts_dir
PROMPT_FILES = sorted(PROMPTS_DIR.glob("*.yaml"))


def test_prompts_dir_is_the_projects_and_not_empty():
    assert prompts_dir() == PROMPTS_DIR
    assert "json_repair" in {p.stem for p in PROMPT_FILES}


@pytest.mark.parametrize("path", PROMPT_FILES, ids=[p.stem for p in PROMPT_FILES])
def test_bundled_prompt_loads_and_renders(path):
    prompts = load_all(PROMPTS_DIR)
    prompt = prompts[path.stem]
    assert prompt.name == path.stem and prompt.ref == f"{path.stem}@{prompt.version}"
    values = {v: f"<<{v.upper()}-VALUE>>" for v in prompt.variables}
    messages = prompt.messages(**values)
    assert [m["role"] for m in messages] == (["system"] if prompt.system else []) + ["user"]
    text = "\n".join(m["content"] for m in messages)
    for value in values.values():
        assert value in text
    for v in prompt.variables:
        assert "{" + v + "}" not in text  # every placeholder was filled
    # LangChain renders the same text as the loader
    lc = prompt.to_langchain().invoke(values).to_messages()
    assert [m.content for m in lc] == [m["content"] for m in messages]


def test_json_repair_prompt_declares_schema_and_error():
    p = load_prompt("json_repair", PROMPTS_DIR)
    assert set(p.variables) == {"schema", "error"}
    assert template_variables(p.system) == {"schema"} and template_variables(p.user) == {"error"}


def _write(tmp_path: Path, stem: str, body: str) -> Path:
    (tmp_path / f"{stem}.yaml").write_text(body, encoding="utf-8")
    return tmp_path




@pytest.mark.parametrize("body, needle", [
    ("name: t\nversion: 1\nvariables: [question, passages]\nuser: 'Q: {question}'\n", "differ"),
    ("name: t\nversion: 1\nvariables: [question]\nsystem: 'use {passages}'\nuser: 'Q: {question}'\n", "differ"),
    ("name: t\nversion: 1\nvariables: []\nuser: 'Q: {question}'\n", "differ"),
    ("name: other\nversion: 1\nvariables: [q]\nuser: '{q}'\n", "must equal the file name"),
    ("name: t\nversion: 1\nvariables: [q]\nuser: '{q}'\ntemperature: 0.2\n", "Extra inputs are not permitted"),
    ("name: t\nversion: 1\nvariables: [q]\nsystem: '{q}'\n", "Field required"),
    ("name: t\nversion: 0\nvariables: [q]\nuser: '{q}'\n", "greater than or equal to 1"),
    ("name: t\nversion: 1\nvariables: ['0']\nuser: 'item {0}'\n", "plain variable name"),
    ("name: t\nversion: 1\nvariables: [a]\nuser: 'item {a.b}'\n", "plain variable name"),
    ("name: t\nversion: 1\nvariables: [q]\nuser: 'json like {\"k\": 1} {q}'\n", "invalid"),
    ("name: t\nversion: 1\nvariables: [q\nuser: '{q}'\n", "invalid"),
    ("- name: t\n", "invalid"),
])
def test_loader_rejects(tmp_path, body, needle):
    with pytest.raises(ConfigError) as e:
        load_prompt("t", _write(tmp_path, "t", body))
    assert needle in str(e.value)
    with pytest.raises(ConfigError):
        load_all(tmp_path)


def test_loader_accepts_doubled_braces_and_reports_missing(tmp_path):
    body = "name: t\nversion: 3\nvariables: [q]\nuser: 'Reply as {{\"answer\": ...}} to {q}'\n"
    p = load_prompt("t", _write(tmp_path, "t", body))
    assert p.ref == "t@3"
    assert p.messages(q="x") == [{"role": "user", "content": 'Reply as {"answer": ...} to x'}]
    with pytest.raises(ConfigError, match="missing values"):
        p.messages()
    with pytest.raises(ConfigError, match="RAGREPORTS_PROMPTS_DIR"):
        load_prompt("absent", tmp_path)


def test_prompt_model_is_frozen():
    p = PromptFile(name="t", version=1, variables=["q"], user="{q}")
    with pytest.raises(ValidationError):
        p.version = 2
