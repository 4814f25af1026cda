"""Question understanding (pure): which reports a question is about, what kind of answer it wants.

:func:`understand` reads the years a question names (``2024年``, ``2023年度``; relative years such as ``去年``
are ignored: they have no anchor), the issuer/region it names (matched against the known documents' meta,
short forms included: ``昆明市科技局`` = issuer ``昆明市科学技术局``, ``昆明`` = region ``昆明市``), and routes:
``doc_ids`` (filter) when the named issuer/region is unambiguous, ``boost_doc_ids`` when it only partially
matches. A report delivered in year N often reports on N-1 and plans N+1, so a named year matches a report's
reporting year, the year after it, or its publication year. Questions naming a place or a year that no known
report covers are flagged ``out_of_scope`` so the answering stage refuses instead of answering from another
report. ``keywords`` are the content words left for lexical scoring, ``qtype`` the kind of answer wanted and
``measure`` the unit a number question asks for (``多少项`` -> ``项``, ``成交额`` -> ``元``).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ragreports.textnorm import to_simplified
from ragreports.types import Meta

# ---------------------------------------------------------------------------------------------------------------
# Rules as data
# ---------------------------------------------------------------------------------------------------------------

#: Question words removed from the keywords (longest first when matching).
QUESTION_WORDS: tuple[str, ...] = (
    "什么时候", "什么样的", "是多少", "为多少", "有多少", "什么样", "哪些方面", "哪个部门", "多少", "几个", "几次", "是什么", "有哪些", "有什么",
    "是哪", "哪些", "哪个", "哪家", "哪部", "哪项", "哪里", "哪天", "哪年", "何时", "是否", "如何", "什么", "怎样",
    "怎么", "由谁", "是谁", "多大", "几", "谁", "吗", "呢", "哪",
)
#: Words that carry no content for lexical scoring.
STOPWORDS: frozenset[str] = frozenset(
    "的 了 和 与 及 在 是 有 为 对 把 被 将 于 中 等 共 共有 共计 总共 一共 累计 合计 全年 年度 本年度 今年 "
    "报告 报告中 指出 提到 方面 情况 工作 开展 进行 主要 其 该 这 那 个 次 名 项 件 又 也 都 还 就 并 向 从 "
    "到 以 按 通过 出 过 起 时 自 截至 截止 目前 我局 本局 局 市 区 县 省".split()
)
#: Cues of the answer type, checked in this order.
QTYPE_CUES: tuple[tuple[str, str], ...] = (
    ("date", r"何时|什么时候|哪天|哪一天|哪年|哪一年|哪月|几月|几号|什么时间|时间是|日期"),
    ("who", r"由谁|是谁|谁|哪个部门|哪位|哪个单位负责"),
    ("number", r"多少|几[^乎]|几$|数量|比例|金额|多大|占比|总额|多高|多长|(?<![效功])率(?:为|是|达)?[？?]?$|率是|率为"),
)
#: Measure words a question can ask for after 多少 / 几 (longest first).
MEASURE_WORDS: tuple[str, ...] = (
    "万人次", "人次", "场次", "批次", "家次", "户次", "件次", "学时", "课时", "小时", "工作日", "个百分点", "百分点",
    "万元", "亿元", "元", "个", "项", "件", "次", "名", "人", "位", "家", "户", "份", "条", "场", "期", "篇", "部",
    "本", "册", "套", "批", "天", "章", "款", "类", "张", "所", "座", "处", "支", "组", "台", "起", "笔", "期", "轮",
    "倍", "%",
)
#: Scale words that may precede a measure word (万元 = 元 after scale).
SCALE_PREFIXES: tuple[str, ...] = ("万亿", "亿", "千万", "百万", "万", "千", "百")
#: Nouns that imply the measure of a number question when no measure word follows 多少 (first match wins).
IMPLIED_MEASURES: tuple[tuple[str, str], ...] = (
    (r"强度|比例|占比|比重|百分比|(?<![效功])率|增长|增幅|降幅", "%"),
    (r"金额|成交额|交易额|总额|经费|资金|准备金|投入|费用|预算|收入|营收|产值|额", "元"),
    (r"人数", "人"),
    (r"学时|课时", "学时"),
)
#: Full forms of organ names and their common short forms (科学技术局 -> 科技局).
SHORT_FORMS: tuple[tuple[str, str], ...] = (
    ("科学技术", "科技"), ("人力资源和社会保障", "人社"), ("市场监督管理", "市场监管"), ("发展和改革", "发改"),
    ("住房和城乡建设", "住建"), ("工业和信息化", "工信"), ("自然资源和规划", "自然资源"), ("农业农村", "农业"),
    ("交通运输", "交通"), ("文化广电旅游", "文旅"), ("文化和旅游", "文旅"), ("卫生健康", "卫健"),
    ("科学技术和工业信息化", "科工信"), ("科技和工业信息化", "科工信"), ("经济和信息化", "经信"),
)
#: Administrative-unit suffixes, longest first (a region name is a run of such units).
ADMIN_SUFFIXES: tuple[str, ...] = ("特别行政区", "自治区", "自治州", "自治县", "新区", "省", "市", "区", "县", "州", "旗", "盟")
#: Organ-name endings (what follows a place name in an issuer).
ORGAN_ENDINGS = r"委员会|办公室|局|委(?![托派])|厅"
#: Place-like words that never name a report's region.
GENERIC_PLACES: frozenset[str] = frozenset(
    "中国 全国 国家 中华人民共和国 本市 全市 我市 该市 某市 本区 全区 我区 该区 某区 本县 全县 某县 本省 全省 某省 "
    "城市 市区 城区 园区 社区 辖区 景区 片区 新区 高新区 开发区 试验区 示范区 自贸区 县区 州市 长三角 珠三角".split()
)

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年(?:度)?")
_CN_YEAR = re.compile(r"([〇零一二三四五六七八九]{4})\s*年")
_CN_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_QUOTED = re.compile(r"“[^”]{2,40}”|《[^》]{2,60}》|\"[^\"]{2,40}\"|「[^」]{2,40}」")
_ORGAN_AFTER = re.compile(rf"[\u4e00-\u9fff]{{1,8}}?(?:{ORGAN_ENDINGS})")
_NOT_ORGAN = re.compile(r"多少|几|哪|什么|如何|是否|谁|年")
_CJK = re.compile(r"[\u4e00-\u9fffA-Za-z0-9%]+")


@dataclass(frozen=True)
class QueryPlan:
    """What a question asks and where to look for it."""

    question: str  # as given
    text: str  # NFKC + Simplified
    years: tuple[int, ...] = ()
    places: tuple[str, ...] = ()  # issuer/region mentions matched to known documents
    unknown_places: tuple[str, ...] = ()  # place names that match no known document
    doc_ids: tuple[str, ...] = ()  # filter to these documents (empty: no filter)
    boost_doc_ids: tuple[str, ...] = ()  # prefer these documents
    keywords: tuple[str, ...] = ()
    qtype: str = "what"  # number | date | who | what
    measure: str | None = None  # unit a number question asks for
    out_of_scope: bool = False  # names a place/year no known report covers


# ---------------------------------------------------------------------------------------------------------------
# Normalisation and small parsers
# ---------------------------------------------------------------------------------------------------------------


def normalise_question(question: str) -> str:
    """NFKC, Traditional -> Simplified, trimmed."""
    return to_simplified(unicodedata.normalize("NFKC", question)).strip()


def find_years(text: str) -> tuple[int, ...]:
    """Absolute years a text names (``2024年``, ``2023年度``, ``二〇二四年``), in order, without duplicates."""
    found: list[tuple[int, int]] = [(m.start(), int(m.group(1))) for m in _YEAR.finditer(text)]
    for m in _CN_YEAR.finditer(text):
        found.append((m.start(), int("".join(str(_CN_DIGIT[c]) for c in m.group(1)))))
    out: list[int] = []
    for _, y in sorted(found):
        if 1949 <= y <= 2100 and y not in out:
            out.append(y)
    return tuple(out)


def question_type(text: str) -> str:
    """``number`` | ``date`` | ``who`` | ``what`` from the question's cue words."""
    body = _QUOTED.sub("", text)
    for qtype, pattern in QTYPE_CUES:
        if re.search(pattern, body):
            return qtype
    return "what"


def asked_measure(text: str) -> str | None:
    """The unit a number question asks for: the measure word after 多少/几, else one implied by its nouns."""
    body = _QUOTED.sub("", text)
    m = re.search(r"(?:多少|几)(?:个(?=[\u4e00-\u9fff]))?", body)
    if m:
        rest = body[m.end():]
        for word in MEASURE_WORDS:
            if rest.startswith(word):
                return base_unit(word)
        if m.group(0).endswith("个"):
            return "个"
    for pattern, unit in IMPLIED_MEASURES:
        if re.search(pattern, body):
            return unit
    return None


def base_unit(unit: str) -> str:
    """The unit without a leading scale word: ``万元`` -> ``元``, ``万人次`` -> ``人次``."""
    for scale in SCALE_PREFIXES:
        if unit.startswith(scale) and len(unit) > len(scale) and unit[len(scale):] in MEASURE_WORDS:
            return unit[len(scale):]
    return unit


def short_form(name: str) -> str:
    """The usual short form of an organ name (``科学技术局`` -> ``科技局``)."""
    for full, short in SHORT_FORMS:
        name = name.replace(full, short)
    return name


def split_units(region: str) -> list[str]:
    """``江门市江海区`` -> ``[江门市, 江海区]``; a name without a known suffix stays whole."""
    units: list[str] = []
    rest = region
    pattern = re.compile(r"[\u4e00-\u9fff]{2,}?(?:" + "|".join(ADMIN_SUFFIXES) + ")")
    while rest:
        m = pattern.match(rest)
        if not m:
            break
        units.append(m.group(0))
        rest = rest[m.end():]
    if rest and not units:
        units.append(rest)
    return units


def _unit_aliases(unit: str) -> set[str]:
    out = {unit}
    for suffix in ADMIN_SUFFIXES:
        if unit.endswith(suffix) and len(unit) - len(suffix) >= 2:
            out.add(unit[: -len(suffix)])
            break
    return out


# ---------------------------------------------------------------------------------------------------------------
# Known documents as name patterns
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DocNames:
    doc_id: str
    meta: Meta
    specific: frozenset[str]  # aliases of the most specific unit (and of the whole region)
    higher: frozenset[str]  # aliases of the higher-level units
    organs: frozenset[str]  # organ name and short forms ("科学技术局", "科技局")


def _doc_names(doc_id: str, meta: Meta) -> _DocNames:
    issuer = normalise_question(meta.issuer or "")
    region = normalise_question(meta.region or "")
    issuer = re.sub(r"^中共", "", issuer)
    issuer = re.sub(r"(党组|党委|党工委)$", "", issuer)
    if not region and issuer:
        region = "".join(split_units(issuer)[:-1]) if len(split_units(issuer)) > 1 else ""
        if not region:
            m = re.match(r"(.+?(?:" + "|".join(ADMIN_SUFFIXES) + "))", issuer)
            region = m.group(1) if m and len(m.group(1)) >= 3 else ""
    units = split_units(region) if region else []
    specific: set[str] = set()
    higher: set[str] = set()
    if units:
        specific |= _unit_aliases(units[-1]) | {region}
        for u in units[:-1]:
            higher |= _unit_aliases(u)
    organ = issuer
    for u in units:
        if organ.startswith(u):
            organ = organ[len(u):]
    if region and organ.startswith(region):
        organ = organ[len(region):]
    organs = {organ, short_form(organ)} if organ and organ != issuer else set()
    if issuer:
        specific |= {issuer, short_form(issuer)}
    return _DocNames(doc_id, meta, frozenset(a for a in specific if a), frozenset(higher - specific),
                     frozenset(o for o in organs if o))


def _find_mentions(text: str, names: Sequence[_DocNames]) -> list[tuple[int, int, str]]:
    """Non-overlapping alias occurrences, longest first."""
    aliases = sorted({a for d in names for a in (d.specific | d.higher)}, key=len, reverse=True)
    taken = [False] * len(text)
    found: list[tuple[int, int, str]] = []
    for alias in aliases:
        for m in re.finditer(re.escape(alias), text):
            s, e = m.span()
            if not any(taken[s:e]):
                found.append((s, e, alias))
                for i in range(s, e):
                    taken[i] = True
    return sorted(found)


def _organ_after(text: str, pos: int) -> str | None:
    m = _ORGAN_AFTER.match(text, pos)
    if not m or _NOT_ORGAN.search(m.group(0)):
        return None
    return m.group(0)


def _organ_matches(mentioned: str, organs: frozenset[str]) -> bool:
    if not organs:
        return True
    sm = short_form(mentioned)
    return any(sm == short_form(o) or sm.endswith(short_form(o)) or short_form(o).endswith(sm) for o in organs)


@functools.lru_cache(maxsize=1)
def _posseg():
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(logging.WARNING)
    return pseg


def place_names(text: str) -> list[str]:
    """Place names (jieba ``ns``) outside quoted titles, generic ones dropped."""
    body = _QUOTED.sub("，", text)
    out = []
    for tok in _posseg().cut(body):
        w = tok.word.strip()
        if tok.flag == "ns" and len(w) >= 2 and w not in GENERIC_PLACES and w not in out:
            out.append(w)
    return out


# ---------------------------------------------------------------------------------------------------------------
# understand()
# ---------------------------------------------------------------------------------------------------------------


def _year_fits(meta: Meta, years: Sequence[int], tier: int) -> bool:
    """Tier 0: the reporting year; 1: the year after it (plans) or the publication year; 2: within a year."""
    pub = int(str(meta.published)[:4]) if meta.published and str(meta.published)[:4].isdigit() else None
    if tier >= 2 and meta.year is None and pub is None:
        return True  # an undated report cannot be ruled out
    for y in years:
        if meta.year is not None and y == meta.year:
            return True
        if tier >= 1 and ((pub is not None and y == pub) or (meta.year is not None and y == meta.year + 1)):
            return True
        if tier >= 2 and meta.year is not None and abs(y - meta.year) <= 1:
            return True
    return False


def _by_year(docs: Sequence[_DocNames], years: Sequence[int]) -> list[_DocNames]:
    for tier in (0, 1, 2):
        chosen = [d for d in docs if _year_fits(d.meta, years, tier)]
        if chosen:
            return chosen
    return []


def _keywords(text: str, remove: Sequence[tuple[int, int]]) -> tuple[str, ...]:
    quoted = [m.group(0)[1:-1] for m in _QUOTED.finditer(text)]
    chars = list(text)
    for s, e in remove:
        for i in range(s, e):
            chars[i] = " "
    body = "".join(chars)
    body = _QUOTED.sub(" ", body)
    body = _YEAR.sub(" ", body)
    body = _CN_YEAR.sub(" ", body)
    for w in sorted(QUESTION_WORDS, key=len, reverse=True):
        body = body.replace(w, " ")
    import jieba

    jieba.setLogLevel(logging.WARNING)
    out: list[str] = []
    for q in quoted:
        if q not in out:
            out.append(q)
    for piece in _CJK.findall(body):
        for tok in jieba.lcut(piece):
            tok = tok.strip()
            if (len(tok) >= 2 and tok not in STOPWORDS and tok not in GENERIC_PLACES and not tok.isdigit()
                    and tok not in out):
                out.append(tok)
    return tuple(out)


def understand(question: str, docs: Sequence[tuple[str, Meta]]) -> QueryPlan:
    """Read a question: years, issuer/region mentions and routing, keywords, answer type and measure."""
    text = normalise_question(question)
    years = find_years(text)
    names = [_doc_names(doc_id, meta) for doc_id, meta in docs]
    mentions = _find_mentions(text, names)
    mentioned = {a for _, _, a in mentions}
    issuer_aliases = {a for d in names for a in d.specific if d.organs and any(a.endswith(o) for o in d.organs)}
    organs_named = [o for s, e, a in mentions if a not in issuer_aliases and (o := _organ_after(text, e))]

    full, partial = [], []
    for d in names:
        if not all(_organ_matches(o, d.organs) for o in organs_named[:1]):
            continue
        if d.specific & mentioned:
            full.append(d)
        elif d.higher & mentioned:
            partial.append(d)

    unknown = [p for p in place_names(text) if not any(p in a or a in p for a in mentioned)]
    out_of_scope = bool(unknown) and not full and not partial
    if mentions and not full and not partial:  # e.g. 昆明市司法局 when only 昆明市科学技术局 is known
        out_of_scope = True

    doc_ids: list[str] = []
    boost: list[str] = []
    if full:
        chosen = full
        if years:
            chosen = _by_year(full, years)
            if not chosen:
                out_of_scope = True
        doc_ids = [d.doc_id for d in chosen]
        boost = [d.doc_id for d in (_by_year(partial, years) if years else partial)]
    elif partial:
        boost = [d.doc_id for d in (_by_year(partial, years) if years else partial)]
    elif years and names:
        boost = [d.doc_id for d in _by_year(names, years)]
        if not boost and not mentions:
            out_of_scope = True  # names only years no known report covers

    if out_of_scope:
        doc_ids, boost = [], []
    remove = [(s, e) for s, e, _ in mentions]
    for s, e, a in mentions:
        if a not in issuer_aliases and (o := _organ_after(text, e)):
            remove.append((e, e + len(o)))
    return QueryPlan(
        question=question,
        text=text,
        years=years,
        places=tuple(a for _, _, a in mentions),
        unknown_places=tuple(unknown),
        doc_ids=tuple(doc_ids),
        boost_doc_ids=tuple(b for b in boost if b not in doc_ids),
        keywords=_keywords(text, remove),
        qtype=question_type(text),
        measure=asked_measure(text) if question_type(text) == "number" else None,
        out_of_scope=out_of_scope,
    )
