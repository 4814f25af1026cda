"""Fact extraction: which numbers are facts (spec/gold-format.md), quotes, offsets, restatements."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ragreports.extract.facts import extract_facts
from ragreports.text.cleaning import clean
from ragreports.text.normalize import match_key, quotes_overlap

DEV = Path(__file__).resolve().parents[2] / "eval" / "suites" / "dev"


def _vu(text: str) -> list[tuple[float, str, bool]]:
    return [(f.value, f.unit, f.approx) for f in extract_facts(text)]


# ---------------------------------------------------------------------------------------------- positives


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # spec examples
        ("2024年，共组织集中学习5次。", [(5, "次", False)]),
        ("发放宣传资料3000余份。", [(3000, "份", True)]),
        ("投入强度为1.92%。", [(1.92, "%", False)]),
        ("《条例》共设十章七十六条，分为总则等。", [(10, "章", False), (76, "条", False)]),
        ("组织学习五次。", [(5, "次", False)]),
        ("高企保有量占全省的66%。", [(66, "%", False)]),
        ("累计吸引9.98万人次在线观看。", [(99800, "人次", False)]),
        ("研发经费投入150.71亿元。", [(15071000000, "元", False)]),
        # approx markers
        ("向社会公众发送各类宣传资料近千份。", [(1000, "份", True)]),
        ("明确每月至少进行1次法治专题学习。", [(1, "次", True)]),
        ("全市总量预计突破2400户。", [(2400, "户", True)]),
        # durations and measure words
        ("实现1个工作日办理。", [(1, "工作日", False)]),
        ("连续两年选派普法骨干。", [(2, "年", False)]),
        ("人均公共法律知识培训21学时。", [(21, "学时", False)]),
        ("由5支科技服务小分队深入企业。", [(5, "支", False)]),
        # several facts in one clause
        ("组织1批次30余人参加庭审旁听。", [(1, "批次", False), (30, "人", True)]),
        ("共查询19批次7000余家次企业征信信息。", [(19, "批次", False), (7000, "家次", True)]),
        # a year next to a fact is not a fact, the fact is
        ("2024年全市登记技术合同13311项。", [(13311, "项", False)]),
        ("对2023年度22件执法案卷进行评查。", [(22, "件", False)]),
        # the fact is outside the quoted name
        ("受理“12345”便民服务热线7件。", [(7, "件", False)]),
        ("江阴市第六届专利奖12项。", [(12, "项", False)]),
        # parallel items with the same value are different facts
        ("不予处罚清单1项，从轻处罚清单1项，减轻处罚事项清单1项。", [(1, "项", False)] * 3),
        ("6项指标均实现100%，100%进驻行政服务中心。", [(6, "项", False), (100, "%", False), (100, "%", False)]),
        # Chinese numerals with scale
        ("培训人员三百余人次。", [(300, "人次", True)]),
        ("新增市场主体4,321户。", [(4321, "户", False)]),
        ("在市政府信息公开网站公开信息数320条。", [(320, "条", False)]),
        ("一次办结率达到百分之九十五。", [(95, "%", False)]),
        ("惠及近百万元。", [(1000000, "元", True)]),
        ("上百家单位参加。", [(100, "家", True)]),
    ],
)
def test_facts_found(text: str, expected: list[tuple[float, str, bool]]) -> None:
    got = _vu(text)
    assert len(got) == len(expected), got
    for (gv, gu, ga), (ev, eu, ea) in zip(got, expected, strict=True):
        assert math.isclose(gv, ev, rel_tol=1e-9) and gu == eu and ga is ea, got


# ---------------------------------------------------------------------------------------------- negatives


@pytest.mark.parametrize(
    "text",
    [
        # years and dates on their own
        "2024年，市科技局深入学习贯彻习近平法治思想。",
        "2024以来，认真落实我市《法治政府建设实施纲要(2021-2025年)》。",
        "该《条例》于2025年1月1日起施行。",
        "2024年10月11日，召开新闻发布会。",
        "出台《2018年度科技局工作绩效考核意见》。",
        # names, slogans and plan titles
        "完成“八五”普法相关工作。",
        "深入推进“532”发展战略。",
        "2025年是“十四五”的收官之年。",
        "严格执行“三重一大”集体决策制度。",
        "受理12345热线来电。",
        "开展“双随机、一公开”监管抽查。",
        "规范完善“五张清单”编制和动态更新。",
        "全面准确把握“十一个坚持”的科学内涵。",
        "落实全市科技系统法治宣传教育五年规划。",
        "落实行政执法三项制度。",
        "严格执行中央八项规定精神。",
        "在“两微一端”设置专栏。",
        "学习《在庆祝改革开放40周年大会上重要讲话》。",
        "根据《通知》(高新组通〔2019〕24号)。",
        # list numbering
        "一是落实法治政府建设第一责任人制度。",
        "（三）加强制度建设。",
        "1.学习践行习近平法治思想。",
        # ordinals and ranks
        "两项指标在全省各州(市)中均排名第一。",
        "省十四届人大常委会第十一次会议通过。",
        "组织完成第五期“营商环境监督行”活动。",
        # 一 as an article, 零 in a slogan
        "把学习作为一项重大政治任务。",
        "打造一支忠诚、干净、担当的干部队伍。",
        "网上办、掌上办、跑零次。",
        # time frames, not durations
        "近三年来，持续推进改革。",
        "制定三年行动计划。",
        # numbers without a unit
        "按照政务服务2.0要求。",
        "加快建设常州万亿之城。",
        # vague amounts and structure words
        "惠及数十家企业。",
        "主要从以下三个方面开展工作。",
        "用三至五年时间完成。",
    ],
)
def test_not_facts(text: str) -> None:
    assert extract_facts(text) == []


# ---------------------------------------------------------------------------------------------- restatements


def test_value_restated_for_same_measure_is_kept_once_at_first_statement() -> None:
    text = "梳理机关内部办事事项8项，实现了市科技局8项机关内部办事事项网上办理。"
    facts = extract_facts(text)
    assert [(f.value, f.unit) for f in facts] == [(8, "项")]
    assert facts[0].start < text.index("实现")


def test_distinctive_value_restated_with_generic_measure_word() -> None:
    text = "下放到我区的管理职权共23项，我局已根据23项事项内容，将23项事项落实到各股室。"
    assert [(f.value, f.unit) for f in extract_facts(text)] == [(23, "项")]


def test_restatement_across_paragraphs_with_same_words() -> None:
    text = "针对2024年开展的15件行政许可事项，做好公示。\n其他工作。\n2024年开展的15件行政许可事项均完成信息录入。"
    assert len(extract_facts(text)) == 1


def test_same_value_for_different_measures_is_two_facts() -> None:
    text = "完成13件现行有效规范性文件和1件其他政策文件数据库录入。对新制定的1件行政规范性文件完成备案。"
    assert [(f.value, f.unit) for f in extract_facts(text)] == [(13, "件"), (1, "件"), (1, "件")]


def test_small_values_nearby_are_not_merged_without_shared_words() -> None:
    text = "开展培训10次，开展执法检查10次。"
    assert len(extract_facts(text)) == 2


# ---------------------------------------------------------------------------------------------- quotes


@pytest.mark.parametrize(
    ("text", "gold_quotes"),
    [
        ("2024年，共组织集中学习5次，认真学习《条例》。", ["共组织集中学习5次"]),
        ("组织1批次30余人参加庭审旁听。", ["组织1批次30余人", "30余人参加庭审旁听"]),
        ("落实1项行政许可和5项行政处罚权力清单要求。", ["落实1项行政许可", "5项行政处罚权力清单"]),
        ("今年我局及时办理人大代表建议2件，政协提案8件，分别是如下。", ["及时办理人大代表建议2件", "政协提案8件，分别是"]),
        ("在继续完善市政务服务中心、金坛区、国家高新区这4个外国人来华工作许可受理点的平台功能。", ["这4个外国人来华工作许可受理点"]),
        ("办理人大代表建议42件、政协委员提案35件。", ["办理人大代表建议42件", "政协委员提案35件"]),
        ("为1,852名劳动者追发工资等待遇2,356.8万元，结案率100%。", ["为1,852名劳动者", "追发工资等待遇2,356.8万元", "结案率100%"]),
    ],
)
def test_quotes_overlap_the_natural_span(text: str, gold_quotes: list[str]) -> None:
    facts = extract_facts(text)
    assert len(facts) == len(gold_quotes)
    for f, g in zip(facts, gold_quotes, strict=True):
        assert quotes_overlap(f.quote, g), (f.quote, g)


def test_quote_does_not_start_with_a_dangling_closing_mark() -> None:
    text = "具有重要意义。条例》共设十章七十六条，分为总则。"
    facts = extract_facts(text)
    assert facts[0].quote == "共设十章"
    assert all("》" not in f.quote for f in facts)


def test_quote_is_short_for_long_clauses() -> None:
    text = "发放创新政策宣传册、" + "《企业研发费用加计扣除政策辅导手册》" * 4 + "等普法宣传资料3000余份；"
    (f,) = extract_facts(text)
    assert f.quote.endswith("普法宣传资料3000余份")
    assert len(f.quote) <= 40


def test_labels_are_short_chinese_names() -> None:
    facts = extract_facts("2024年，共组织集中学习5次。目前我局有3名公职律师。办结率、见面率均达到100%。")
    assert [f.label for f in facts] == ["组织集中学习次数", "公职律师人数", "办结率、见面率"]


_SENTENCES = [
    "2024年，共组织集中学习5次。", "发放宣传资料3000余份；", "累计吸引9.98万人次在线观看，", "完成“八五”普法工作。",
    "共设十章七十六条，", "两项指标均排名第一。", "近千份", "一是加强领导。\n", "（三）依法行政\n", "合同成交额176.73亿元、",
    "组织1批次30余人参加庭审旁听", "这4个受理点", "   ", "“十四五”规划", "连续两年选派骨干", "占比66%以上",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_SENTENCES), min_size=1, max_size=12))
def test_offsets_always_point_at_the_quote(parts: list[str]) -> None:
    text = "".join(parts)
    facts = extract_facts(text)
    for f in facts:
        assert text[f.start:f.end] == f.quote
        assert f.quote.strip() == f.quote and f.quote
        assert f.label
    assert [f.start for f in facts] == sorted(f.start for f in facts)
    assert extract_facts(text) == facts  # deterministic


# ---------------------------------------------------------------------------------------------- dev suite


def _suite_f1(suite: Path) -> float:
    tp = n_pred = n_gold = 0
    for rep in sorted((suite / "reports").glob("*.txt")):
        gold = yaml.safe_load((suite / "gold" / (rep.stem + ".yaml")).read_text(encoding="utf-8"))["facts"]
        preds = extract_facts(clean(rep.read_text(encoding="utf-8")))
        used = [False] * len(preds)
        for g in gold:
            for i, p in enumerate(preds):
                if (not used[i] and math.isclose(p.value, float(g["value"]), rel_tol=1e-6)
                        and match_key(p.unit) == match_key(str(g["unit"])) and quotes_overlap(p.quote, g["quote"])):
                    used[i] = True
                    tp += 1
                    break
        n_pred += len(preds)
        n_gold += len(gold)
    p, r = tp / n_pred, tp / n_gold
    return 2 * p * r / (p + r)


@pytest.mark.skipif(not (DEV / "gold").exists(), reason="dev suite not present")
def test_dev_suite_fact_f1_regression() -> None:
    assert _suite_f1(DEV) >= 0.95
