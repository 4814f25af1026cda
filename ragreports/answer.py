"""Answering: a question and its retrieved passages -> a short answer with verified citations.

Two engines behind :func:`answer_question`:

* ``extractive`` (default, offline, deterministic): every sentence/clause of the passages is a candidate; it is
  scored against the question (weighted character-bigram coverage of the question's keywords, the longest run it
  shares with the question, the fit to the question type: a number with the asked unit, a date, a ``由…担任``
  role) and the passage's retrieval rank. The answer starts with the answer itself (``13311项。…``) and cites the
  sentence it came from. Below a calibrated score, or when a number question finds no number with a compatible
  unit, it refuses.
* ``llm``: the passages are packed under a token budget into ``prompts/answer.yaml`` as numbered, quoted data; the
  model must return JSON ``{answer, quotes, refused}``; every quote is located in the report text (exact, then
  normalised, then fuzzy) and only verified quotes become citations. No verified quote, or no valid JSON after the
  bounded re-asks: refusal. Never a crash, never an ungrounded claim.

Passage text is data: sentences that look like instructions to a model (``忽略以上指令…``) are never answers or
citations, in either engine.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragreports.errors import ConfigError, ProviderError, StructuredOutputError
from ragreports.grounding import QuoteLocator
from ragreports.query import QueryPlan, understand
from ragreports.types import Answer, Citation, SearchResult

log = logging.getLogger("ragreports.answer")

REFUSAL = "报告中未找到相关信息。"
ANSWER_CHARS = 120  # longest answer; the key answer comes first (scored within the first 80 characters)
SUPPORT_CHARS = 100  # supporting clause after the head
CITE_CHARS = 160  # longest citation quote

#: Minimum extractive score to answer (calibrated on the dev suite with absent-fact questions; see bench/).
MIN_SCORE = 0.34
#: Units that answer each other's questions (with a lower fit than the exact unit).
COMPATIBLE_UNITS: tuple[frozenset[str], ...] = (
    frozenset({"人", "名", "位"}),
    frozenset({"次", "场次", "场", "期", "轮", "批次"}),
    frozenset({"项", "件", "个", "条"}),
    frozenset({"家", "户", "个"}),
    frozenset({"份", "册", "本", "套"}),
    frozenset({"学时", "课时", "小时"}),
)
#: Text that addresses a model rather than reporting facts: never an answer, never a citation.
INJECTION_PATTERNS: tuple[str, ...] = (
    r"忽略(以上|上述|之前|前面|先前|此前|所有|全部|你的|系统)(的)?(所有|全部)?(指令|指示|提示词?|要求|规则|设定|内容)",
    r"(无视|不要理会|不要遵守|不再遵守)(以上|上述|之前|前面|所有|全部|你的|系统)(的)?(指令|指示|提示词?|要求|规则|设定)",
    r"ignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier)\s+(instructions|prompts?|rules)",
    r"disregard\s+.{0,20}instructions",
    r"system\s*prompt|系统提示词?",
    r"你(现在)?是一个?.{0,10}(助手|机器人|模型|AI)",
    r"you\s+are\s+now",
    r"(请|直接|只)(回答|输出|回复)[“\"「]",
)
_INJECTION = re.compile("|".join(f"(?:{p})" for p in INJECTION_PATTERNS), re.I)
_DATE = re.compile(
    r"(?:19|20)\d{2}年\d{1,2}月\d{1,2}[日号]|(?:19|20)\d{2}年\d{1,2}月|(?<!\d)\d{1,2}月\d{1,2}[日号]"
    r"|(?:19|20)\d{2}[-./]\d{1,2}[-./]\d{1,2}|(?:19|20)\d{2}年(?!度)(?:底|末|初)?"
)
#: Role patterns for who-questions; group 1 is the person or post.
WHO_PATTERNS: tuple[str, ...] = (
    r"以([^，,。；;：:]{2,20}?)(?:担任|任|为)(?:组长|主任|第一责任人|负责人)",
    r"由([^，,。；;：:]{2,20}?)(?:担任|兼任|任|牵头)",
    r"负责人[为是：:]?([\u4e00-\u9fff]{2,4}?)同志",
    r"([\u4e00-\u9fff]{2,4}?)同志",
    r"([^，,。；;：:由以]{2,12}?)(?:担任|任)(?:组长|主任|第一责任人)",
)
_BOOK_TITLE = re.compile(r"《([^《》]{1,60})》")
_TITLE = re.compile(r"《[^《》]{2,60}》|“[^“”]{2,30}”")
#: A what-question asking for a named thing: the words after the question word name its kind (哪部条例 -> 条例…).
_ASKS_NAME = re.compile(r"(?:哪部|哪个|哪项|哪种|哪类|哪一|哪些|什么)([^，,。？?！!]{1,6})")
_CLAUSE_END = re.compile(r"[，,：:；;。！？!?]")
_OPEN_CLOSE = (("《", "》"), ("“", "”"), ("「", "」"), ("〔", "〕"))


# ---------------------------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------------------------


def _key(s: str) -> str:
    """Comparison form for scoring (texts are already Simplified): NFKC, letters/digits/CJK only, lower case."""
    s = unicodedata.normalize("NFKC", s).lower()
    return "".join(c for c in s if c.isalnum() or c == "%")


def is_injection(text: str) -> bool:
    """True when ``text`` reads like an instruction to a model (prompt injection), not report content."""
    return bool(_INJECTION.search(unicodedata.normalize("NFKC", text)))


def _refusal(question: str, engine: str, prompt: str | None = None) -> Answer:
    return Answer(question, REFUSAL, True, (), engine, prompt)


def _citation(p: SearchResult, text: str | None, locator: QuoteLocator | None, s: int, e: int) -> Citation | None:
    """Citation for passage-local span [s, e): offsets into the document text, verified."""
    quote = p.text[s:e].strip()
    if not quote or text is None:
        return None
    lead = len(p.text[s:e]) - len(p.text[s:e].lstrip())
    start = p.start + s + lead
    if text[start : start + len(quote)] == quote:
        return Citation(p.doc_id, p.source, p.section, quote, start, start + len(quote))
    if locator is None:
        return None
    ev = locator.locate(quote, hint=max(0, p.start - 50))
    if ev is None:
        return None
    return Citation(p.doc_id, p.source, p.section, ev.quote, ev.start, ev.end)


# ---------------------------------------------------------------------------------------------------------------
# extractive engine
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sentence:
    rank: int  # passage rank
    start: int  # passage-local offsets
    end: int
    clauses: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Candidate:
    score: float
    rank: int
    sentence: _Sentence
    focus: tuple[int, int]  # the clause(s) that answer, passage-local
    head: str | None  # the key answer (number, date, person) when it is shorter than the clause
    follow: _Sentence | None = None  # the next sentence of the passage (answers a heading-like sentence)


class _Scorer:
    """How much of the question a text covers: each keyword weighs its IDF over the sentences of the reports in
    play (a word every sentence has says little); a keyword present in full scores its weight, a partly present
    one a share of it by character bigrams."""

    PARTIAL = 0.7  # a keyword present only in part earns at most this share of its weight

    def __init__(self, plan: QueryPlan, corpus: Sequence[str]):
        terms: list[str] = []
        for k in plan.keywords:
            if len(key := _key(k)) >= 2 and key not in terms:
                terms.append(key)
        if not terms:
            terms = [_key(plan.text)]
        keys = [_key(c) for c in corpus]
        n = max(1, len(keys))
        self.terms: list[tuple[str, set[str], float]] = []
        for t in terms:
            df = sum(1 for k in keys if t in k)
            self.terms.append((t, {t[i : i + 2] for i in range(len(t) - 1)}, math.log(1 + n / (0.5 + df))))
        self.total = sum(w for _, _, w in self.terms) or 1.0
        self.core = "".join(terms)
        self.titles = {_key(m) for m in _BOOK_TITLE.findall(plan.text)}

    def coverage(self, text: str) -> float:
        k = _key(text)
        grams = {k[i : i + 2] for i in range(len(k) - 1)}
        short = [_key(m) for m in _BOOK_TITLE.findall(text)] if self.titles else []
        got = 0.0
        for t, tg, w in self.terms:
            if t in k or (t in self.titles and any(len(x) >= 2 and t.endswith(x) for x in short)):
                got += w  # a short title (《条例》 for 《某市科技创新促进条例》) names the same thing
            elif tg:
                got += w * self.PARTIAL * len(tg & grams) / len(tg)
        return got / self.total

    def run(self, text: str) -> float:
        """Longest run shared with the question's keywords, 0..1 (8 characters count as a full match)."""
        from ragreports.textnorm import longest_common_run

        return min(1.0, longest_common_run(self.core, _key(text)) / 8)


def _split(p: SearchResult, rank: int) -> list[_Sentence]:
    from ragreports.chunking import split_sentences

    out = []
    for s, e in split_sentences(p.text):
        if is_injection(p.text[s:e]):
            continue
        clauses, pos = [], s
        for m in _CLAUSE_END.finditer(p.text, s, e):
            if m.end() - pos > 1:
                clauses.append((pos, m.end()))
            pos = m.end()
        if e - pos > 0:
            clauses.append((pos, e))
        out.append(_Sentence(rank, s, e, tuple(clauses) or ((s, e),)))
    return out


def _inside_name(text: str, pos: int, lo: int) -> bool:
    """True when ``pos`` lies inside 《…》 or “…” opened after ``lo``."""
    seg = text[lo:pos]
    return any(seg.count(o) > seg.count(c) for o, c in _OPEN_CLOSE)


def _unit_fit(unit: str, measure: str | None) -> float:
    if measure is None:
        return 0.8
    if unit == measure:
        return 1.0
    if any(unit in g and measure in g for g in COMPATIBLE_UNITS):
        return 0.6
    return 0.0


def _arabic_head(text: str, q) -> str:
    """The quantity as written, Chinese numerals turned into digits (近千份 -> 近1000份, 七十六条 -> 76条)."""
    if not q.chinese:
        return text[q.start : q.end]
    from ragreports.numbers import parse_chinese_numeral

    v = parse_chinese_numeral(q.numeral)
    digits = str(v) if v is not None else q.numeral
    return text[q.start : q.num_start] + digits + text[q.num_end : q.end]


def _clause_of(sent: _Sentence, pos: int) -> tuple[int, int]:
    for s, e in sent.clauses:
        if s <= pos < e:
            return s, e
    return sent.start, sent.end


def _point_candidates(p: SearchResult, sent: _Sentence, plan: QueryPlan) -> list[tuple[int, int, str, float]]:
    """(start, end, head, fit) of the numbers/dates in a sentence that fit the question, passage-local."""
    text = p.text
    out: list[tuple[int, int, str, float]] = []
    if plan.qtype == "number":
        from ragreports.numbers import iter_quantities

        seg = text[sent.start : sent.end]
        for q in iter_quantities(seg):
            if q.unit == "年" and plan.measure != "年":
                continue
            if _inside_name(seg, q.num_start, 0):
                continue
            fit = _unit_fit(q.unit, plan.measure)
            if fit > 0:
                out.append((sent.start + q.start, sent.start + q.end, _arabic_head(seg, q), fit))
    elif plan.qtype == "date":
        for m in _DATE.finditer(text, sent.start, sent.end):
            full = 1.0 if "月" in m.group(0) or "-" in m.group(0) else 0.3
            out.append((m.start(), m.end(), m.group(0), full))
    return out


def _label_window(sent: _Sentence, points: Sequence[tuple[int, int, str, float]], i: int) -> tuple[int, int]:
    """The words that name point ``i``: from its clause start (or the previous point) to a little after it."""
    s, e, _, _ = points[i]
    cs, ce = _clause_of(sent, s)
    lo = max([cs] + [pe for ps, pe, _, _ in points if pe <= s])
    hi = min([ce, e + 10] + [ps for ps, pe, _, _ in points if ps >= e])
    return lo, max(hi, e)


def _who_head(text: str, plan: QueryPlan) -> str | None:
    for pat in WHO_PATTERNS:
        m = re.search(pat, text)
        if m:
            head = m.group(1).strip("，,、 ")
            if head and not any(k in head for k in plan.keywords if len(k) >= 2):
                return head
    return None


def _idf_corpus(passages: Sequence[SearchResult], texts: Mapping[str, str]) -> list[str]:
    """Sentences of the whole reports the passages come from (the passages themselves when a text is missing)."""
    from ragreports.chunking import split_sentences

    out: list[str] = []
    for doc_id in dict.fromkeys(p.doc_id for p in passages):
        text = texts.get(doc_id)
        if text:
            out += [text[s:e] for s, e in split_sentences(text)]
        else:
            out += [p.text[s:e] for p in passages if p.doc_id == doc_id for s, e in split_sentences(p.text)]
    return out


def _score_sentences(plan: QueryPlan, passages: Sequence[SearchResult], texts: Mapping[str, str]
                     ) -> tuple[list[_Candidate], _Scorer]:
    sentences = [(p, s) for rank, p in enumerate(passages) for s in _split(p, rank)]
    following = {id(a): b for (pa, a), (pb, b) in zip(sentences, sentences[1:]) if pa is pb}
    scorer = _Scorer(plan, _idf_corpus(passages, texts))
    n = max(1, len(passages))
    seen: set[tuple[str, int]] = set()
    cands: list[_Candidate] = []
    for p, sent in sentences:
        absolute = (p.doc_id, p.start + sent.start)
        if absolute in seen:
            continue
        seen.add(absolute)
        text = p.text
        prior = 0.06 * (1 - sent.rank / n)
        c_sent = scorer.coverage(text[sent.start : sent.end])
        c_sec = scorer.coverage(p.section) if p.section else 0.0
        if plan.qtype in ("number", "date"):
            points = _point_candidates(p, sent, plan)
            for i, (s, e, head, fit) in enumerate(points):
                lo, hi = _label_window(sent, points, i)
                label = text[lo:hi]
                score = (0.45 * scorer.coverage(label) + 0.2 * c_sent + 0.1 * c_sec + 0.2 * scorer.run(label)
                         + 0.1 * fit + prior)
                cands.append(_Candidate(score, sent.rank, sent, _clause_of(sent, s), head))
            continue
        for cs, ce in sent.clauses:
            clause = text[cs:ce]
            head = _who_head(clause, plan) if plan.qtype == "who" else None
            fit = 0.1 if head else 0.0
            score = (0.45 * scorer.coverage(clause) + 0.2 * c_sent + 0.1 * c_sec + 0.2 * scorer.run(clause)
                     + fit + prior)
            cands.append(_Candidate(score, sent.rank, sent, (cs, ce), head, following.get(id(sent))))
    cands.sort(key=lambda c: (-c.score, c.rank, c.sentence.start))
    return cands, scorer


_HEADING = re.compile(r"^(?:[一二三四五六七八九十]{1,3}是|[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}[、.．]"
                      r"|\d{1,2}[、.．](?!\d))")


def _is_heading(text: str) -> bool:
    """A short title-like sentence (``四是法律顾问制度常态化。``, ``(二)坚持科学立法``): it names a topic, the
    sentence after it says what was done."""
    t = text.strip()
    body = _HEADING.sub("", t)
    return len(body) <= 20 and (bool(_HEADING.match(t)) or not re.search(r"[。！？!?；;]$", t))


def _window(sent: _Sentence, focus: tuple[int, int], limit: int, before: int = 1) -> tuple[int, int]:
    """Focus clause widened by up to ``before`` clauses on the left and as many on the right as fit in ``limit``."""
    idx = next((i for i, c in enumerate(sent.clauses) if c[0] <= focus[0] < c[1]), 0)
    lo_i = idx
    while lo_i > 0 and idx - lo_i < before and focus[1] - sent.clauses[lo_i - 1][0] <= limit:
        lo_i -= 1
    lo, hi = sent.clauses[lo_i][0], focus[1]
    for s, e in sent.clauses[idx + 1 :]:
        if e - lo > limit:
            break
        hi = e
    return lo, hi


HEADING_REACH = 240  # characters after a heading searched for the sentence that answers


def _after_heading(cands: Sequence[_Candidate], best: _Candidate, text: str, scorer: _Scorer) -> _Candidate:
    """Among the clauses just after a heading-like best candidate (same passage), the one that holds most of the
    keywords the heading does not already hold; the earliest on ties."""
    h = best.sentence
    hk = _key(text[h.start : h.end])
    residual = [(t, w) for t, _, w in scorer.terms if t not in hk]
    options = [c for c in cands if c.rank == best.rank and h.end <= c.sentence.start <= h.end + HEADING_REACH
               and not _is_heading(text[c.sentence.start : c.sentence.end])]
    if not options:
        if best.follow is not None:
            return dataclasses.replace(best, sentence=best.follow, focus=best.follow.clauses[0])
        return best

    def residual_hits(c: _Candidate) -> float:
        k = _key(text[c.focus[0] : c.focus[1]])
        return sum(w for t, w in residual if t in k)

    return max(options, key=lambda c: (residual_hits(c), -c.focus[0]))


def _title_head(window: str, plan: QueryPlan) -> str | None:
    """A 《title》 or “name” in the answer window whose kind is what the question asks for (哪部条例 ->
    《…条例》), unless the question already names it."""
    m = _ASKS_NAME.search(plan.text)
    if not m:
        return None
    for t in _TITLE.finditer(window):
        inner = t.group(0)[1:-1]
        if len(inner) >= 2 and inner not in plan.text and inner[-2:] in m.group(1):
            return t.group(0)
    return None


def _skip_label(text: str, sent: _Sentence, lo: int, hi: int) -> int:
    """Start after a leading list-marker label clause (``三是加强发挥法律顾问作用，…``) when more follows."""
    for s, e in sent.clauses:
        if s == lo and e < hi and _HEADING.match(text[s:e]) and e - s <= 24:
            return e
    return lo


def _trim_text(text: str, limit: int) -> str:
    text = text.strip().rstrip("，,、；;：:")
    if len(text) > limit:
        text = text[:limit].rstrip("，,、；;：:") + "…"
    return text


def answer_extractive(question: str, passages: Sequence[SearchResult], texts: Mapping[str, str],
                      plan: QueryPlan) -> Answer:
    """Extractive engine: the best-scoring clause of the passages, or a refusal."""
    if not passages or plan.out_of_scope:
        return _refusal(question, "extractive")
    cands, scorer = _score_sentences(plan, passages, texts)
    if not cands or cands[0].score < MIN_SCORE:
        return _refusal(question, "extractive")
    best = cands[0]
    p = passages[best.rank]
    text = p.text
    sent = best.sentence
    if not best.head and _is_heading(text[sent.start : sent.end]):
        best = _after_heading(cands, best, text, scorer)  # a heading restates the question; what follows answers
        sent = best.sentence
    if plan.qtype in ("number", "date", "who") and best.head:
        lo, hi = _window(sent, best.focus, SUPPORT_CHARS, before=0)
        answer = f"{best.head}。{_trim_text(text[lo:hi], SUPPORT_CHARS)}"
    else:
        lo, hi = _window(sent, best.focus, ANSWER_CHARS, before=1 if plan.qtype == "what" else 0)
        lo = _skip_label(text, sent, lo, hi)
        answer = _trim_text(text[lo:hi], ANSWER_CHARS)
        if plan.qtype == "what" and (title := _title_head(text[lo:hi], plan)):
            answer = _trim_text(f"{title}。{answer}", ANSWER_CHARS)
    cs, ce = (sent.start, sent.end) if sent.end - sent.start <= CITE_CHARS else _window(sent, (lo, hi), CITE_CHARS)
    doc_text = texts.get(p.doc_id)
    citation = _citation(p, doc_text, QuoteLocator(doc_text) if doc_text else None, cs, ce)
    if citation is None:
        log.warning("could not locate the answer sentence in document %s; refusing", p.doc_id)
        return _refusal(question, "extractive")
    return Answer(question, answer, False, (citation,), "extractive")


# ---------------------------------------------------------------------------------------------------------------
# LLM engine
# ---------------------------------------------------------------------------------------------------------------


class LLMQuote(BaseModel):
    model_config = ConfigDict(extra="ignore")

    passage: int | None = None
    text: str


class LLMReply(BaseModel):
    """What the model must return (prompts/answer.yaml)."""

    model_config = ConfigDict(extra="ignore")

    answer: str = ""
    quotes: list[LLMQuote] = Field(default_factory=list)
    refused: bool = False

    @field_validator("quotes", mode="before")
    @classmethod
    def _quotes(cls, v):
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("quotes must be a list of strings or {passage, text} objects")
        out = []
        for q in v:
            if isinstance(q, str):
                out.append({"text": q})
            elif isinstance(q, dict):
                out.append({"passage": q.get("passage"), "text": q.get("text") or q.get("quote") or ""})
            else:
                raise ValueError("each quote must be a string or an object with passage and text")
        return out


def pack_passages(passages: Sequence[SearchResult], budget: int, count) -> tuple[str, list[SearchResult]]:
    """Numbered, delimited passages that fit ``budget`` tokens (the first is cut to fit if it must)."""
    blocks: list[str] = []
    used: list[SearchResult] = []
    total = 0
    for p in passages:
        head = f"[{len(used) + 1}] 来源：{Path(p.source).name}" + (f" ｜ {p.section}" if p.section else "")
        block = f"{head}\n<<<\n{p.text}\n>>>"
        n = count(block)
        if total + n > budget:
            if used:
                break
            keep = max(1, int(len(p.text) * max(budget - count(head) - 10, 1) / max(n, 1)))
            p = dataclasses.replace(p, text=p.text[:keep], end=p.start + keep)
            block = f"{head}\n<<<\n{p.text}\n>>>"
            n = count(block)
        blocks.append(block)
        used.append(p)
        total += n
    return "\n\n".join(blocks), used


def _structured(model, messages: list[dict[str, str]], reasks: int) -> LLMReply:
    """Ask for an :class:`LLMReply`; re-ask with the error a bounded number of times."""
    try:
        from ragreports.llm import complete_structured
    except ImportError:  # provider module without the helper: same loop here
        complete_structured = None
    if complete_structured is not None:
        return complete_structured(model, messages, LLMReply, reasks=reasks)
    last = ""
    for attempt in range(reasks + 1):
        last = model.complete(messages, json_mode=True)
        try:
            return LLMReply.model_validate(_json_object(last))
        except (ValueError, TypeError) as exc:
            messages = messages + [
                {"role": "assistant", "content": last},
                {"role": "user", "content": f"Invalid reply ({exc}). Return only the JSON object described."},
            ]
    raise StructuredOutputError("answer reply is not valid JSON", reasks + 1, last)


def _json_object(raw: str):
    raw = raw.strip()
    m = re.search(r"\{.*\}", raw, re.S)
    if not m:
        raise ValueError("no JSON object in the reply")
    return json.loads(m.group(0))


def answer_llm(question: str, passages: Sequence[SearchResult], texts: Mapping[str, str], plan: QueryPlan, *,
               chat_model, prompts_dir: Path | None, context_tokens: int, reasks: int = 2) -> Answer:
    """LLM engine: JSON answer from numbered passages; only verified quotes become citations."""
    from ragreports.config import REPO_ROOT
    from ragreports.prompts import load_prompt
    from ragreports.tokens import TokenCounter

    if chat_model is None:
        raise ConfigError("engine 'llm' needs a chat model: set RAGREPORTS_LLM (e.g. openai:gpt-4o-mini) or use "
                          "--engine extractive")
    prompt = load_prompt("answer", Path(prompts_dir) if prompts_dir else REPO_ROOT / "prompts")
    if not passages or plan.out_of_scope:
        return _refusal(question, "llm", prompt.ref)
    block, used = pack_passages(passages, context_tokens, TokenCounter().count)
    messages = prompt.messages(question=question, passages=block)
    try:
        reply = _structured(chat_model, messages, reasks)
    except StructuredOutputError as exc:
        log.warning("LLM answer refused: %s", exc)
        return _refusal(question, "llm", prompt.ref)
    except ProviderError:
        raise
    if reply.refused or not reply.answer.strip() or is_injection(reply.answer):
        return _refusal(question, "llm", prompt.ref)
    citations = _verify_quotes(reply.quotes, used, texts)
    if not citations:
        log.info("LLM answer refused: none of its %d quote(s) could be located", len(reply.quotes))
        return _refusal(question, "llm", prompt.ref)
    if not _numbers_grounded(reply.answer, citations):
        log.info("LLM answer refused: it states a quantity none of its verified quotes states")
        return _refusal(question, "llm", prompt.ref)
    return Answer(question, reply.answer.strip(), False, tuple(citations), "llm", prompt.ref)


def _numbers_grounded(answer: str, citations: Sequence[Citation]) -> bool:
    """Every quantity the answer states (years aside) is stated by one of the verified quotes."""
    from ragreports.numbers import iter_quantities

    quoted = {(q.value, q.unit) for c in citations for q in iter_quantities(c.quote)}
    return all((q.value, q.unit) in quoted for q in iter_quantities(answer) if q.unit != "年")


def _verify_quotes(quotes: Sequence[LLMQuote], used: Sequence[SearchResult], texts: Mapping[str, str]
                   ) -> list[Citation]:
    """Locate each quote in the document of its passage (or of any passage); keep those inside a passage."""
    locators: dict[str, QuoteLocator] = {}
    out: list[Citation] = []
    for q in quotes:
        quote = q.text.strip()
        if not quote or is_injection(quote):
            continue
        order = list(used)
        if q.passage is not None and 1 <= q.passage <= len(used):
            order = [used[q.passage - 1]] + [p for p in used if p is not used[q.passage - 1]]
        for p in order:
            text = texts.get(p.doc_id)
            if text is None:
                continue
            loc = locators.setdefault(p.doc_id, QuoteLocator(text))
            ev = loc.locate(quote, hint=p.start)
            if ev is None:
                continue
            inside = [u for u in used if u.doc_id == p.doc_id and ev.start < u.end and ev.end > u.start]
            if not inside or is_injection(ev.quote):
                continue
            c = Citation(p.doc_id, p.source, inside[0].section, ev.quote, ev.start, ev.end)
            if c not in out:
                out.append(c)
            break
    return out


# ---------------------------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------------------------


def answer_question(question: str, passages: list[SearchResult], texts: Mapping[str, str], *,
                    plan: QueryPlan | None = None, engine: str = "extractive", chat_model=None,
                    prompts_dir: Path | None = None, context_tokens: int = 3000) -> Answer:
    """Answer ``question`` from ``passages`` (retrieved chunks, best first); ``texts`` maps doc_id to the
    normalised document text all offsets refer to. Refuses (``refused=True``, no citations) rather than guess."""
    if plan is None:
        plan = dataclasses.replace(understand(question, []), out_of_scope=False)
    if engine == "extractive":
        return answer_extractive(question, passages, texts, plan)
    if engine == "llm":
        return answer_llm(question, passages, texts, plan, chat_model=chat_model, prompts_dir=prompts_dir,
                          context_tokens=context_tokens)
    raise ConfigError(f"unknown answer engine {engine!r}; use extractive or llm")
