"""Versioned prompt files (``NAME.yaml``; the packaged ones are in ``ragreports/data/prompts``) with declared
variables.

A prompt file::

    name: answer            # must equal the file stem
    version: 1              # bump on every change; outputs record "name@version"
    description: ...
    variables: [question, passages]
    system: |               # optional
      ...{var}...           # str.format / LangChain f-string syntax; literal braces doubled: {{ }}
    user: |
      ...

The loader rejects a file whose declared variables differ from the ones its templates use.
"""

from __future__ import annotations

import string
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ragreports.errors import ConfigError


def template_variables(template: str) -> set[str]:
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            if not field.isidentifier():
                raise ValueError(f"placeholder {{{field}}} is not a plain variable name (double literal braces)")
            names.add(field)
    return names


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    description: str = ""
    variables: list[str]
    system: str = ""
    user: str

    @model_validator(mode="after")
    def _check_variables(self) -> PromptFile:
        used = template_variables(self.system) | template_variables(self.user)
        declared = set(self.variables)
        if used != declared:
            raise ValueError(
                f"declared variables {sorted(declared)} differ from those used in the templates {sorted(used)}"
            )
        return self

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def messages(self, **values: str) -> list[dict[str, str]]:
        """Render to chat messages; every declared variable must be given."""
        missing = set(self.variables) - set(values)
        if missing:
            raise ConfigError(f"prompt {self.ref}: missing values for {sorted(missing)}")
        out = []
        if self.system:
            out.append({"role": "system", "content": self.system.format(**values)})
        out.append({"role": "user", "content": self.user.format(**values)})
        return out

    def to_langchain(self):
        """A LangChain ChatPromptTemplate with the same variables (LangChain imported lazily)."""
        from langchain_core.prompts import ChatPromptTemplate

        parts = ([("system", self.system)] if self.system else []) + [("human", self.user)]
        return ChatPromptTemplate.from_messages(parts)


def load_prompt(name: str, prompts_dir: Path) -> PromptFile:
    path = Path(prompts_dir) / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"prompt file {path} not found; set RAGREPORTS_PROMPTS_DIR to a folder holding {name}.yaml "
                          "(or unset it to use the packaged prompts)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        prompt = PromptFile.model_validate(data)
    except (yaml.YAMLError, ValidationError, ValueError) as exc:
        raise ConfigError(f"prompt file {path} is invalid: {exc}") from exc
    if prompt.name != path.stem:
        raise ConfigError(f"prompt file {path}: name {prompt.name!r} must equal the file name {path.stem!r}")
    return prompt


def load_all(prompts_dir: Path) -> dict[str, PromptFile]:
    return {p.stem: load_prompt(p.stem, prompts_dir) for p in sorted(Path(prompts_dir).glob("*.yaml"))}
