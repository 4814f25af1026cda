"""Data shipped inside the package: rule files (``*.yaml``) and the versioned prompt files (``prompts/``).

Rules that are data live here, not in code. Every rule file is read through :func:`load_rules`, which validates
it with the pydantic model of the stage that owns it (``extra="forbid"``: a misspelt key is an error, not a
silently ignored rule) and caches the result::

    rules = load_rules("query_rules", QueryRulesFile)
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ragreports.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def data_dir() -> Path:
    """The folder holding the packaged rule files."""
    return Path(str(resources.files(__name__)))


def prompts_dir() -> Path:
    """The folder of the packaged prompt files (the default of ``Settings.prompts_dir``)."""
    return data_dir() / "prompts"


def read_yaml(path: Path) -> object:
    """A YAML file's content; a ConfigError naming the file when it cannot be read or parsed."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path} ({exc}); fix it or restore it from git") from None


@functools.cache
def load_rules(name: str, model: type[M]) -> M:
    """The rule file ``ragreports/data/<name>.yaml`` validated by ``model`` (cached per name and model)."""
    return validate_rules(data_dir() / f"{name}.yaml", model)


def validate_rules(path: Path, model: type[M]) -> M:
    """A rule file at any path validated by ``model``; a ConfigError that names the file and the first problems."""
    try:
        return model.model_validate(read_yaml(path))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                             for e in exc.errors(include_url=False)[:5])
        raise ConfigError(f"rule file {path} is invalid: {problems}; fix it or restore it from git") from None
