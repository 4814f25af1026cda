"""Table-driven tests of the pure scoring rules (spec/gold-format.md, "Matching")."""

from __future__ import annotations

import pytest

from ragreports.evaluation.gold import GoldFact, parse_gold
from ragreports.evaluation.matching import parse_number_answer, states_answer, unit_key, values_equal
from ragreports.evaluation.models import (
    PredCitation,
    PredEvidence,
    PredFact,
    Predictions,
    PredItem,
    PredQuestion,
    PredReport,
    PredResult,
    PredSummary,
)
from ragreports.evaluation.scoring import (
    aggregate,
    cites_quote,
    contains_quote,
    evidence_verifies,
    fact_matches,
    match_facts,
    max_bipartite,
    meta_field_correct,
    metric_values,
    names_match,
    retrieved_hit,
    score_report,
    score_suite,
    section_points,
    strip_areas,
)
from ragreports.text.normalize import quotes_overlap


def gf(value, unit, quote, label="x", approx=False) -> GoldFact:
    return GoldFact(label=label, value=value, unit=unit, approx=approx, quote=quote)


def pf(value, unit, quote, label="x", approx=False, start=-1, end=-1) -> PredFact:
    return PredFact(label=label, value=value, unit=unit, approx=approx, quote=quote, start=start, end=end)


# -- values, units, overlap --------------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b,equal", [
    (99800, 9.98 * 10000, True),          # 9.98万 after scale carries float noise
    (15071000000, 150.71 * 1e8, True),
    (1.92, 1.92000000001, True),
    (5, 5.0001, False),
    (3000, 3001, False),
    (0, 0, True),
])
def test_values_equal(a, b, equal):
    assert values_equal(a, b) is equal


@pytest.mark.parametrize("a,b,equal", [
    ("次", "次", True),
    ("人次", " 人次 ", True),
    ("%", "％", True),            # full width percent (NFKC); punctuation units keep their symbol
    ("%", "‰", False),
    ("%", "", False),
    ("個", "个", True),           # Traditional vs Simplified
    ("人", "人次", False),
    ("名", "人", False),          # no synonym folding: units compare as text
])
def test_unit_key(a, b, equal):
    assert (unit_key(a) == unit_key(b)) is equal


@pytest.mark.parametrize("a,b,overlap", [
    ("共组织集中学习5次", "组织集中学习5次", True),                   # gold contains prediction
    ("集中学习5次", "2024年共组织集中学习5次，效果良好", True),          # prediction contains gold
    ("共組織集中學習5次", "共组织集中学习5次", True),                   # Traditional vs Simplified
    ("共组织 集中学习，5次", "共组织集中学习5次", True),                 # whitespace and punctuation
    ("學(xué)習(xí)法律法規", "学习法律法规", True),                       # pinyin ruby removed
    ("发放普法宣传资料3000余份给群众", "普法宣传资料3000余份，覆盖全市", True),  # shared run 12 >= 0.6 * 16
    ("发放宣传资料3000余份给全体群众观看", "普法宣传资料3000余份覆盖全市企业和群众", False),  # 10 < 0.6 * 19
    ("累计吸引9.98万人次", "组织集中学习5次", False),
    ("", "组织集中学习5次", False),
])
def test_quotes_overlap(a, b, overlap):
    assert quotes_overlap(a, b) is overlap
    assert quotes_overlap(b, a) is overlap


def test_overlap_sixty_percent_boundary():
    shorter = "甲乙丙丁戊己庚辛壬癸"  # 10 characters
    assert quotes_overlap(shorter, "子丑" + shorter[:6] + "寅卯辰")  # 6 of 10 in one run: exactly 60%
    assert not quotes_overlap(shorter, "子丑" + shorter[:5] + "寅卯辰")  # 5 of 10
    assert not quotes_overlap(shorter, shorter[:3] + "子" + shorter[3:6] + "丑")  # 6 shared, but not in one run


# -- fact matching -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gold,pred,match", [
    (gf(99800, "人次", "累计吸引9.98万人次在线观看"), pf(99800, "人次", "吸引9.98万人次在线观看"), True),
    (gf(3000, "份", "普法宣传资料3000余份", approx=True), pf(3000, "份", "发放普法宣传资料3000余份", approx=True), True),
    (gf(3000, "份", "普法宣传资料3000余份", approx=True), pf(3000, "份", "普法宣传资料3000余份", approx=False), True),
    (gf(3000, "份", "普法宣传资料3000余份"), pf(30000, "份", "普法宣传资料3000余份"), False),  # wrong scale
    (gf(5, "次", "共组织集中学习5次"), pf(5, "场", "共组织集中学习5次"), False),               # wrong unit
    (gf(5, "次", "共组织集中学习5次"), pf(5, "次", "开展普法活动5次"), False),                  # evidence elsewhere
    (gf(66, "%", "占比66%"), pf(66, "％", "占比66％"), True),
    (gf(19, "件", "全年共办理行政许可事项19件"), pf(19, "件", "全年共辦理行政許可事項19件"), True),
])
def test_fact_matches(gold, pred, match):
    assert fact_matches(gold, pred) is match


def test_one_gold_fact_is_matched_once():
    gold = [gf(5, "次", "共组织集中学习5次")]
    preds = [pf(5, "次", "共组织集中学习5次"), pf(5, "次", "组织集中学习5次")]
    m = match_facts(gold, preds)
    assert m.matched == {0: 0}
    assert m.spurious == [1]
    assert m.missed == [] and m.unsupported == {}


def test_matching_is_maximum_not_greedy():
    # gold 0 accepts preds 0 and 1, gold 1 only pred 0: a greedy first-come matching would pair (0, 0) and leave
    # gold 1 unmatched; the maximum matching pairs both.
    gold = [gf(5, "次", "共组织集中学习5次"), gf(5, "次", "发放宣传资料5次")]
    preds = [pf(5, "次", "共组织集中学习5次，发放宣传资料5次"), pf(5, "次", "共组织集中学习5次")]
    assert fact_matches(gold[0], preds[0]) and fact_matches(gold[0], preds[1])
    assert fact_matches(gold[1], preds[0]) and not fact_matches(gold[1], preds[1])
    m = match_facts(gold, preds)
    assert m.matched == {0: 1, 1: 0}
    assert m.missed == [] and m.spurious == []


@pytest.mark.parametrize("adj,n_right,size", [
    ([[0, 1], [0]], 2, 2),
    ([[0], [0], [0]], 1, 1),
    ([[0, 1, 2], [0], [1]], 3, 3),
    ([[], [0]], 1, 1),
    ([], 0, 0),
])
def test_max_bipartite(adj, n_right, size):
    m = max_bipartite(adj, n_right)
    assert len(m) == size
    assert len(set(m.values())) == len(m)
    assert all(j in adj[i] for i, j in m.items())


def test_right_value_unsupported_source_is_separated_from_wrong_fact():
    gold = [gf(99800, "人次", "累计吸引9.98万人次在线观看"), gf(5, "次", "共组织集中学习5次")]
    preds = [pf(99800, "人次", "2024年，共组织集中学习"), pf(7, "次", "共组织集中学习5次")]
    m = match_facts(gold, preds)
    assert m.matched == {}
    assert m.unsupported == {0: 0}  # right value and unit, evidence does not overlap
    assert m.missed == [1]          # the 7 次 prediction is a wrong fact
    assert m.spurious == [1]


# -- meta --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,short", [
    ("重庆市巴南区科学技术局", "巴南区科学技术局"),
    ("浙江省龙泉市", "龙泉市"),
    ("江苏省常州市科学技术局", "常州市科学技术局"),
    ("江苏省苏州市", "苏州市"),
    ("广西壮族自治区南宁市科学技术局", "南宁市科学技术局"),
    ("广东省江门市江海区科学技术局", "江海区科学技术局"),
    ("云南省红河哈尼族彝族自治州个旧市", "个旧市"),
])
def test_place_prefix_positive(name, short):
    assert short in strip_areas(name)
    assert names_match(name, short) and names_match(short, name)


@pytest.mark.parametrize("a,b", [
    ("重庆市巴南区科学技术局", "科学技术局"),      # no place name left
    ("常州市科学技术局", "科学技术局"),
    ("浙江省龙泉市", "浙江省"),                  # a prefix is not the name
    ("常州市科学技术局", "无锡市科学技术局"),
    ("常州市科学技术局", "常州市科技局"),          # short form is not the full official name
    ("江门市江海区", "江门市"),
    ("江门市科学技术局高新区分局", "高新区分局"),
])
def test_place_prefix_negative(a, b):
    assert not names_match(a, b)
    assert not names_match(b, a)


@pytest.mark.parametrize("field,gold,pred,ok", [
    ("issuer", ["中共鹤壁市科学技术局党组", "鹤壁市科学技术局"], "鹤壁市科学技术局", True),
    ("issuer", ["中共鹤壁市科学技术局党组", "鹤壁市科学技术局"], "中共鹤壁市科学技术局党组", True),
    ("issuer", ["中共鹤壁市科学技术局党组", "鹤壁市科学技术局"], "鹤壁市科技局", False),
    ("issuer", ["常州市科学技术局"], "常州市科學技術局", True),        # Traditional
    ("issuer", ["常州市科学技术局"], " 常州市 科学技术局 ", True),      # whitespace
    ("issuer", None, None, True),                                      # null only matches null
    ("issuer", None, "", True),
    ("issuer", None, "常州市科学技术局", False),
    ("issuer", ["常州市科学技术局"], None, False),
    ("region", ["常州市"], "江苏省常州市", True),
    ("year", [2024], 2024, True),
    ("year", [2024], "2024", True),
    ("year", [2024], 2025, False),
    ("year", [2023, 2024], 2023, True),
    ("year", None, 2024, False),
    ("published", ["2025-03-06"], "2025-03-06", True),
    ("published", ["2025-03-06"], "2025-3-6", False),
    ("published", ["2025-03-06"], "2025-03-07", False),
    ("published", None, None, True),
    ("published", None, "2025-03-06", False),
])
def test_meta_field(field, gold, pred, ok):
    assert meta_field_correct(field, gold, pred) is ok


def test_meta_from_gold_file_with_yaml_date_and_lists():
    import yaml

    g = parse_gold(yaml.safe_load(
        "report: a.txt\nmeta: {issuer: [甲市科学技术局, 中共甲市科学技术局党组], region: 甲市, year: 2024, "
        "published: 2025-03-06}\n"))
    assert meta_field_correct("published", g.meta.accepted("published"), "2025-03-06")
    assert meta_field_correct("issuer", g.meta.accepted("issuer"), "中共甲市科学技术局党组")


# -- questions ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gold,value,unit", [
    ("5次", 5, "次"),
    ("3000余份", 3000, "份"),
    ("9.98万人次", 99800, "人次"),
    ("近1000份", 1000, "份"),
    ("至少1次", 1, "次"),
    ("1.92%", 1.92, "%"),
    ("176.73亿元", 17673000000, "元"),
    ("七十六条", 76, "条"),
    ("100人以上", 100, "人"),
    ("13,311项", 13311, "项"),
])
def test_parse_number_answer(gold, value, unit):
    na = parse_number_answer(gold)
    assert na is not None and values_equal(na.value, value) and na.unit == unit


@pytest.mark.parametrize("gold", ["2025年1月1日", "局长", "黎翔", "《常州市科技创新促进条例》", "3名公职律师",
                                  "抓学习、抓培训和抓责任制"])
def test_text_answers_are_not_numbers(gold):
    assert parse_number_answer(gold) is None


@pytest.mark.parametrize("answer,gold,ok", [
    ("直播累计吸引99800人次在线观看。", "9.98万人次", True),
    ("直播累计吸引9.98万人次在线观看。", "99800人次", True),
    ("共组织集中学习5次。", "5次", True),
    ("共组织集中学习五次。", "5次", True),
    ("共组织集中学习15次。", "5次", False),            # 5 inside 15 is not the value
    ("共组织集中学习5场。", "5次", False),             # wrong unit
    ("发放普法宣传资料3000余份。", "3000余份", True),
    ("发放普法宣传资料约3000份。", "3000余份", True),   # approximation marker is not part of the value
    ("发放普法宣传资料3000万份。", "3000余份", False),
    ("研发投入强度为1.92％。", "1.92%", True),
    ("该条例于2025年1月1日起施行。", "2025年1月1日", True),
    ("该条例于2025年1月11日起施行。", "2025年1月1日", False),
    ("由局党组书记、局长任组长。", "局党组书记、局长", True),
    ("由局党组书记局长任组长", "局党组书记、局长", True),  # punctuation
    ("由局黨組書記、局長任組長。", "局党组书记、局长", True),  # Traditional
    ("由副局长任组长。", "局党组书记、局长", False),
    ("x" * 78 + "5次", "5次", True),                  # ends at character 80
    ("x" * 79 + "5次", "5次", False),                 # the unit falls outside the window
    ("x" * 80 + "共组织集中学习5次", "5次", False),
    ("x" * 76 + "局长任组长", "局长", True),
    ("x" * 79 + "局长任组长", "局长", False),
])
def test_states_answer(answer, gold, ok):
    assert states_answer(answer, gold) is ok


def _cit(doc_id, quote):
    return PredCitation(doc_id=doc_id, quote=quote, start=0, end=len(quote))


@pytest.mark.parametrize("cites,ok", [
    ([_cit("a", "2024年，共组织集中学习5次，发放资料。")], True),
    ([_cit("a", "共組織集中學習5次")], True),              # Traditional citation
    ([_cit("a", "组织集中学习5次")], False),               # citation must CONTAIN the gold quote
    ([_cit("b", "2024年，共组织集中学习5次，发放资料。")], False),  # another report's passage
    ([_cit("a", "其他"), _cit("a", "共组织集中学习5次")], True),
    ([], False),
])
def test_cites_quote(cites, ok):
    assert cites_quote(cites, "共组织集中学习5次", "a") is ok


def _res(doc_id, text):
    return PredResult(doc_id=doc_id, text=text)


def test_retrieval_hits_at_k():
    ret = [_res("a", "无关"), _res("b", "共组织集中学习5次"), _res("a", "x共组织集中 学习5次y"), _res("a", "z")]
    assert not retrieved_hit(ret, "共组织集中学习5次", "a", 1)
    assert not retrieved_hit(ret, "共组织集中学习5次", "a", 2)  # rank 2 is another report
    assert retrieved_hit(ret, "共组织集中学习5次", "a", 3)
    assert retrieved_hit(ret, "共组织集中学习5次", "b", 2)
    assert not retrieved_hit(ret, "共组织集中学习5次", None, 5)


@pytest.mark.parametrize("passage,quote,ok", [
    ("全年共辦理行政許可事項19件。", "共办理行政许可事项19件", True),
    ("共办理行政许可事项1", "共办理行政许可事项19件", False),
    ("a", "", False),
])
def test_contains_quote(passage, quote, ok):
    assert contains_quote(passage, quote) is ok


# -- grounding, sections, a whole report -------------------------------------------------------------------------
@pytest.mark.parametrize("start,end,quote,ok", [
    (2, 5, "cde", True), (2, 5, "cdx", False), (3, 6, "cde", False), (-1, 2, "ab", False), (5, 5, "", False),
    (8, 12, "ij", False),
])
def test_evidence_verifies(start, end, quote, ok):
    assert evidence_verifies("abcdefghij", quote, start, end) is ok


GOLD_YAML = """
report: a.txt
meta: {issuer: 常州市科学技术局, region: 常州市, year: 2024, published: null}
facts:
  - {label: 学习, value: 5, unit: 次, quote: 共组织集中学习5次}
  - {label: 观看, value: 99800, unit: 人次, quote: 累计吸引9.98万人次在线观看}
questions:
  - {question: 几次？, answer: 5次, quote: 共组织集中学习5次}
sections:
  measures: [共组织集中学习5次, 累计吸引9.98万人次在线观看]
  shortcomings: [法律知识仍要加强]
"""
TEXT = "2024年，共组织集中学习5次，累计吸引9.98万人次在线观看。存在不足：法律知识仍要加强。"


def _ev(q):
    i = TEXT.index(q)
    return PredEvidence(quote=q, start=i, end=i + len(q))


def test_section_points_count_only_the_same_section():
    import yaml

    gold = parse_gold(yaml.safe_load(GOLD_YAML))
    summary = PredSummary(measures=[PredItem(text="学习", evidence=[_ev("组织集中学习5次")]),
                                    PredItem(text="不足", evidence=[_ev("法律知识仍要加强")])])
    pts = section_points(gold, summary)
    assert [(p.section, p.covered) for p in pts] == [("measures", True), ("measures", False),
                                                     ("shortcomings", False)]
    assert not any(p.covered for p in section_points(gold, None))


def test_score_report_end_to_end():
    import yaml

    gold = parse_gold(yaml.safe_load(GOLD_YAML))
    i = TEXT.index("共组织集中学习5次")
    rep = PredReport(
        report="a.txt", doc_id="a",
        meta={"issuer": "江苏省常州市科学技术局", "region": "常州市", "year": 2024, "published": None},
        facts=[pf(5, "次", "共组织集中学习5次", start=i, end=i + 9), pf(99800, "人次", "2024年", start=0, end=5),
               pf(2024, "年", "2024年", start=0, end=4)],
        summary=PredSummary(measures=[PredItem(text="学习", evidence=[_ev("共组织集中学习5次")])],
                            shortcomings=[PredItem(text="不足", evidence=[])]))
    q = PredQuestion(report="a.txt", question="几次？", answer="5次",
                     citations=[PredCitation(doc_id="a", quote=TEXT[:16], start=0, end=16)],
                     retrieved=[_res("a", TEXT)] * 5)
    rs = score_report(gold, rep, [q], {"a": TEXT})
    assert [f.status for f in rs.facts] == ["matched", "unsupported"]
    assert rs.facts[1].predicted.quote == "2024年"
    assert [f.quote for f in rs.spurious_facts] == ["2024年"] and rs.spurious_facts[0].value == 2024
    assert rs.meta == {"issuer": True, "region": True, "year": True, "published": True}
    assert rs.questions[0].correct and rs.questions[0].hit_at_1
    assert [p.covered for p in rs.sections] == [True, False, False]
    # facts: 1 ok, 1 bad offsets ("2024年" is 5 chars at 0..5 -> "2024年，"), 1 ok; items: 1 ok, 1 without
    # evidence; citation ok
    assert rs.grounding_checked == 6 and rs.grounding_verified == 4
    s = aggregate([rs])
    assert (s.facts.gold, s.facts.predicted, s.facts.matched, s.facts.unsupported) == (2, 3, 1, 1)
    assert s.facts.precision == round(1 / 3, 4) and s.facts.recall == 0.5 and s.facts.f1 == 0.4
    assert s.sections.coverage == round(1 / 3, 4)
    assert s.grounding.verified == round(4 / 6, 4)


def test_missing_predictions_score_zero_and_count_as_refused():
    import yaml

    gold = parse_gold(yaml.safe_load(GOLD_YAML))
    res = score_suite([gold], Predictions(), {})
    s = res.scores
    assert (s.facts.matched, s.facts.recall, s.facts.precision) == (0, 0.0, 0.0)
    assert s.qa.accuracy == 0.0 and s.qa.refused == 1
    assert s.meta.fields["published"] == 1.0 and s.meta.fields["issuer"] == 0.0  # null gold, null prediction
    assert s.grounding.checked == 0 and s.grounding.verified == 1.0
    assert metric_values(s)["fact_f1"] == 0.0


def test_refused_answer_is_never_correct():
    import yaml

    gold = parse_gold(yaml.safe_load(GOLD_YAML))
    q = PredQuestion(report="a.txt", question="几次？", answer="5次", refused=True,
                     citations=[_cit("a", TEXT)], retrieved=[])
    rs = score_report(gold, PredReport(report="a.txt", doc_id="a"), [q], {"a": TEXT})
    assert not rs.questions[0].correct and rs.questions[0].reason == "refused"
