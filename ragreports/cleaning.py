"""Cleaning: decoded report text -> normalised text that every offset refers to.

PLACEHOLDER (owned by the cleaning helper): pure function ``clean(text) -> str``.
"""

from __future__ import annotations

import re

from ragreports.textnorm import strip_pinyin, to_simplified_aligned

_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


def clean(text: str) -> str:
    text = _TAG.sub("", text)
    text = strip_pinyin(text)
    return to_simplified_aligned(text).strip()
