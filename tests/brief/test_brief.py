"""The standard brief (ragreports.brief): template shape, section mapping, evidence, LLM engine with a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragreports.brief.cues import load_cues
from ragreports.brief.engines import summarize
from ragreports.brief.model import Brief
from ragreports.brief.units import report_units
from ragreports.data import prompts_dir
from ragreports.errors import ConfigError
from ragreports.llm.fake import fake_model
from ragreports.text.normalize import quotes_overlap
from ragreports.types import Document, Fact, Meta

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "eval" / "suites" / "dev"

# Synthetic reports in the genre (not the dev files): every test states what a rule must do with them.
FULL = """某市司法局2023年法治政府建设年度报告
2023年，我局在市委市政府领导下，扎实推进法治政府建设。现将有关情况报告如下：
一、2023年推进法治政府建设的主要举措和成效
（一）加强组织领导。一是履行第一责任人职责。局党组书记主持召开专题会议4次，研究部署法治政府建设工作。二是完善工作机制。成立法治政府建设领导小组，明确各科室职责分工。
（二）推进普法宣传。开展“八五”普法宣传活动12场次，发放宣传资料5000余份。组织全体干部参加年度学法考试。
（三）严格规范行政执法。全面落实行政执法三项制度，办理行政处罚案件23件。
二、存在的不足
一是学法用法的深度还不够；二是执法人员力量仍然不足。
三、2024年工作安排
（一）深化普法宣传。持续开展普法进企业活动。
（二）提升执法水平。加强执法人员培训，提升执法能力。
"""

PLAN_ADMITS = """一、主要工作
1.完善制度建设。制定《行政规范性文件管理办法》，清理规范性文件15件。
2.优化政务服务。推行“一网通办”，全年办理政务服务事项3200件。
二、下一步工作打算
我局工作虽取得一定成效，但也存在不足，对此将采取以下措施：一是加强干部学法培训；二是完善内部监督机制。
"""

NO_HEADINGS = """今年以来，我局组织集中学法3次，修订《合同管理办法》等制度2项，行政复议案件全部依法办结。
下一步，我局将继续加强法治机关建设，完善重大行政决策程序，提升依法行政水平。
"""

OTHER_AND_LEADER = """一、主要举措
组织开展法律顾问进机关活动，聘请常年法律顾问2名，审查合同18份。
二、党政主要负责人履行推进法治建设第一责任人职责情况
局主要负责人带头学法，主持研究法治议题5次，带头开展述法。
三、其他需要报告的事项
本年度未发生行政诉讼案件，未收到行政复议申请。
"""

MIXED = """一、工作成效
组织执法人员培训2期，参训人员120人次。
二、存在的问题及下一步打算
（一）存在问题。基层执法力量依然薄弱，信息化水平不高。
（二）下一步打算。加快建设执法信息平台，充实基层执法力量。
"""


def doc(text: str, doc_id: str = "t", meta: Meta | None = None) -> Document:
    return Document(doc_id, f"{doc_id}.txt", text, text, "0" * 64, meta or Meta())


def quotes(items) -> list[str]:
    return [ev.quote for it in items for ev in it.evidence]


def covers(items, point: str) -> bool:
    return any(quotes_overlap(point, q) for q in quotes(items))


def assert_verified(brief: Brief, text: str) -> None:
    for _, it in brief.items():
        assert it.evidence, it
        for ev in it.evidence:
            assert text[ev.start:ev.end] == ev.quote


# ---------------------------------------------------------------------------------------------- template shape


def test_json_shape_matches_cli_spec():
    facts = [Fact("行政处罚案件数", 23.0, "件", False, "办理行政处罚案件23件", FULL.index("办理行政处罚案件23件"),
                  FULL.index("办理行政处罚案件23件") + len("办理行政处罚案件23件"))]
    meta = Meta(issuer="某市司法局", region="某市", year=2023, published="2024-01-30", title="某市司法局2023年法治政府建设年度报告")
    out = summarize(doc(FULL, meta=meta), facts).model_dump(mode="json")
    assert {"doc_id", "source", "meta", "measures", "leadership", "shortcomings", "next_year", "other",
            "key_figures", "generated_by"} <= set(out)
    assert set(out["meta"]) == {"issuer", "region", "year", "published", "title"}
    assert out["meta"]["year"] == 2023 and out["meta"]["published"] == "2024-01-30"
    assert {"model", "prompt"} <= set(out["generated_by"])
    for item in out["measures"]:
        assert isinstance(item["topic"], str) and item["text"]
        assert all(set(ev) == {"quote", "start", "end"} for ev in item["evidence"])
    assert out["key_figures"] == [{"label": "行政处罚案件数", "value": 23.0, "unit": "件", "approx": False,
                                   "quote": "办理行政处罚案件23件", "start": facts[0].start, "end": facts[0].end}]
    json.dumps(out, ensure_ascii=False)  # serialisable as is


def test_extractive_is_deterministic_and_records_cue_version():
    a, b = summarize(doc(FULL)), summarize(doc(FULL))
    assert a.model_dump() == b.model_dump()
    assert a.generated_by.engine == "extractive"
    assert a.generated_by.prompt == f"brief_cues@{load_cues().version}"


# ---------------------------------------------------------------------------------------------- section mapping


def test_sections_map_to_template_fields():
    brief = summarize(doc(FULL))
    assert_verified(brief, FULL)
    for point in ("办理行政处罚案件23件", "发放宣传资料5000余份", "成立法治政府建设领导小组"):
        assert covers(brief.measures, point), point
    assert covers(brief.leadership, "局党组书记主持召开专题会议4次")
    assert covers(brief.shortcomings, "学法用法的深度还不够") and covers(brief.shortcomings, "执法人员力量仍然不足")
    assert len(brief.shortcomings) == 2  # one item per enumerated shortcoming
    assert covers(brief.next_year, "持续开展普法进企业活动") and covers(brief.next_year, "加强执法人员培训")
    # nothing leaks across fields
    assert not covers(brief.measures, "持续开展普法进企业活动")
    assert not covers(brief.next_year, "执法人员力量仍然不足")
    assert brief.other == []


@pytest.mark.parametrize(
    "point, topic",
    [("发放宣传资料5000余份", "普法宣传"), ("办理行政处罚案件23件", "行政执法"), ("成立法治政府建设领导小组", "组织领导")],
)
def test_measure_topics_from_keywords(point, topic):
    brief = summarize(doc(FULL))
    item = next(it for it in brief.measures if any(point in ev.quote for ev in it.evidence))
    assert item.topic == topic
    assert all(it.topic in load_cues().topics or it.topic == "其他" for it in brief.measures)


def test_plan_section_that_admits_shortcomings():
    brief = summarize(doc(PLAN_ADMITS))
    assert_verified(brief, PLAN_ADMITS)
    assert len(brief.shortcomings) == 1 and "存在不足" in brief.shortcomings[0].evidence[0].quote
    assert "采取以下措施" not in brief.shortcomings[0].evidence[0].quote  # cut after the admitting clause
    assert len(brief.next_year) == 2
    assert covers(brief.next_year, "加强干部学法培训") and covers(brief.next_year, "完善内部监督机制")
    assert not covers(brief.next_year, "但也存在不足")


def test_report_without_shortcomings_has_empty_list():
    text = PLAN_ADMITS.replace("我局工作虽取得一定成效，但也存在不足，对此将采取以下措施：", "")
    brief = summarize(doc(text))
    assert brief.shortcomings == []
    assert brief.model_dump(mode="json")["shortcomings"] == []
    assert len(brief.next_year) == 2


def test_report_without_headings_splits_by_paragraph_openers():
    brief = summarize(doc(NO_HEADINGS))
    assert covers(brief.measures, "修订《合同管理办法》等制度2项")
    assert covers(brief.next_year, "完善重大行政决策程序")
    assert not covers(brief.measures, "完善重大行政决策程序")


def test_work_before_the_first_heading_is_measures_when_no_part_is():
    text = ("2023年，我局组织集中学法3次，修订制度2项。现将有关情况报告如下：\n"
            "一、存在的不足\n基层执法力量仍然薄弱。\n二、下一步工作打算\n完善执法协作机制。")
    brief = summarize(doc(text))
    assert covers(brief.measures, "组织集中学法3次") and not covers(brief.measures, "现将有关情况报告如下")
    assert covers(brief.shortcomings, "基层执法力量仍然薄弱") and covers(brief.next_year, "完善执法协作机制")
    # with a measures part, the opening paragraph is not an item
    assert not covers(summarize(doc(FULL)).measures, "在市委市政府领导下")


def test_leadership_and_other_sections():
    brief = summarize(doc(OTHER_AND_LEADER))
    assert covers(brief.leadership, "主持研究法治议题5次")
    assert covers(brief.other, "未发生行政诉讼案件")
    assert covers(brief.measures, "聘请常年法律顾问2名")
    assert not covers(brief.measures, "主持研究法治议题5次")
    assert all(it.topic is None for it in brief.leadership + brief.other)


def test_mixed_section_splits_by_sub_heading():
    brief = summarize(doc(MIXED))
    assert covers(brief.shortcomings, "基层执法力量依然薄弱")
    assert covers(brief.next_year, "加快建设执法信息平台")
    assert not covers(brief.next_year, "信息化水平不高")


@pytest.mark.parametrize(
    "text, titles",
    [
        ("一、做法\n一是健全制度。出台办法2项。二是强化监督。开展检查5次。", ["健全制度", "强化监督"]),
        # markers without punctuation before them and a nested enumeration stay in sequence
        ("一、做法\n（一）完善体系一是规范文件审核，清理文件3件二是建立公平竞争审查制度。", [None, "建立公平竞争审查制度"]),
        ("一、做法\n一是优化服务。在线办理事项。一是开通专线；二是精简材料。二是加强宣传。发放资料9份。",
         ["优化服务", None, "精简材料", "加强宣传"]),
    ],
)
def test_enumerations_become_units(text, titles):
    units = [u for u in report_units(text) if u.field == "measures"]
    got = [text[u.title[0]:u.title[1]] if u.title else None for u in units]
    assert got == titles


# ---------------------------------------------------------------------------------------------- evidence


def test_dev_suite_coverage_and_verified_evidence():
    """Regression gate on the dev suite, scored as spec/gold-format.md says (bench/brief.py prints details)."""
    from ragreports.text.cleaning import clean

    hit = total = 0
    for gold_path in sorted((DEV / "gold").glob("*.yaml")):
        gold = yaml.safe_load(gold_path.read_text(encoding="utf-8"))
        text = clean((DEV / "reports" / gold["report"]).read_text(encoding="utf-8"))
        brief = summarize(doc(text, gold_path.stem))
        assert_verified(brief, text)
        for field, points in (gold.get("sections") or {}).items():
            for p in points or []:
                total += 1
                hit += covers(getattr(brief, field), p)
    assert total > 50 and hit / total >= 0.8


_PIECES = ["一、", "二、存在的问题\n", "三、下一步打算\n", "（一）", "1.", "一是", "二是", "三是", "。", "；", "，", "\n",
           "加强组织领导", "开展培训3次", "局党组书记带头学法", "存在不足", "下一步将完善制度", "“", "”", "《办法》", " ",
           "發放資料", "學(xué)習(xí)", "100%", "以下措施："]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_every_evidence_points_at_its_quote(pieces):
    text = "".join(pieces)
    brief = summarize(doc(text))
    assert_verified(brief, text)
    for _, it in brief.items():
        assert it.text


# ---------------------------------------------------------------------------------------------- llm engine


class Scripted:
    """The project's fake chat model replaying scripted replies (the last one repeats); ``sent`` records the
    messages of each call, ``model.calls`` the trace (prompt ref, attempt, tokens)."""

    def __init__(self, *replies: str):
        self.sent: list[list[dict[str, str]]] = []

        def reply(messages):
            self.sent.append(messages)
            return replies[min(len(self.sent), len(replies)) - 1]

        self.model = fake_model(responses=reply)


def llm_reply(**fields) -> str:
    return json.dumps(fields, ensure_ascii=False)


def run_llm(model, text: str = FULL) -> Brief:
    return summarize(doc(text), engine="llm", chat_model=model, prompts_dir=prompts_dir(), context_chars=10_000)


def test_llm_items_are_verified_and_fabrications_dropped():
    reply = llm_reply(
        measures=[{"topic": "行政执法", "text": "办理处罚案件23件", "quotes": ["办理行政处罚案件23件"]},
                  {"topic": "普法宣传", "text": "编造的举措", "quotes": ["召开全市普法大会100次"]},
                  {"topic": "不存在的主题", "text": "普法活动", "quotes": ["開展“八五”普法宣傳活動12場次"]}],
        shortcomings=[{"text": "学法不深", "quotes": ["学法用法的深度还不够"]}],
        next_year=[{"text": "普法进企业", "quotes": ["持续开展普法进企业活动"]}],
    )
    scripted = Scripted(reply)
    brief = run_llm(scripted.model)
    assert len(scripted.sent) == 1
    assert brief.dropped_items == 1
    assert brief.generated_by.model == "fake" and brief.generated_by.engine == "llm"
    assert brief.generated_by.prompt == "brief@1"
    # the call itself carries the prompt version (trace, fake handlers)
    assert [(c.prompt, c.attempt, c.outcome) for c in scripted.model.calls] == [("brief@1", 1, "ok")]
    assert_verified(brief, FULL)
    assert [it.text for it in brief.measures] == ["办理处罚案件23件", "普法活动"]
    # a Traditional-script quote is located in the Simplified text: the evidence is the report's own span
    assert brief.measures[1].evidence[0].quote == "开展“八五”普法宣传活动12场次"
    assert brief.measures[1].topic == "普法宣传"  # unknown topic replaced by the keyword topic
    assert brief.leadership == [] and brief.other == []
    assert len(brief.shortcomings) == 1 and len(brief.next_year) == 1
    assert "某市司法局" in scripted.sent[0][-1]["content"]  # the report text was sent


def test_llm_reask_after_invalid_json():
    good = llm_reply(measures=[{"topic": "行政执法", "text": "处罚", "quotes": ["办理行政处罚案件23件"]}])
    scripted = Scripted("这不是JSON", good)
    brief = run_llm(scripted.model)
    assert len(scripted.sent) == 2 and brief.generated_by.engine == "llm" and len(brief.measures) == 1
    assert [c.attempt for c in scripted.model.calls] == [1, 2]


def test_llm_invalid_output_falls_back_to_extractive_with_warning():
    scripted = Scripted('{"measures": "oops"')
    with pytest.warns(RuntimeWarning, match="fell back"):
        brief = run_llm(scripted.model)
    assert len(scripted.sent) == 3  # the first reply and the two re-asks (the default bound)
    assert brief.generated_by.engine == "extractive" and brief.warnings
    assert brief.measures and covers(brief.measures, "办理行政处罚案件23件")


def test_llm_engine_needs_a_model_and_known_engine():
    with pytest.raises(ConfigError, match="chat model"):
        summarize(doc(FULL), engine="llm")
    with pytest.raises(ConfigError, match="unknown brief engine"):
        summarize(doc(FULL), engine="magic")


def test_long_report_is_sent_in_parts():
    scripted = Scripted(llm_reply())
    text = FULL * 3
    summarize(doc(text), engine="llm", chat_model=scripted.model, prompts_dir=prompts_dir(), context_chars=400)
    sent = [m[-1]["content"] for m in scripted.sent]
    assert len(sent) > 1 and all(len(s) < 400 + 1500 for s in sent)


# ---------------------------------------------------------------------------------------------- data files


def test_prompt_file_declares_its_variables():
    from ragreports.llm.prompts import load_prompt

    p = load_prompt("brief", prompts_dir())
    assert p.ref.startswith("brief@") and set(p.variables) == {"topics", "report"}


@pytest.mark.parametrize(
    "change, message",
    [(lambda d: d.update(unknown_key=1), "unknown_key"),
     (lambda d: d["filler"].append("以下(["), "not a valid regular expression"),
     (lambda d: d["section_headings"].update(plans=["x"]), "unknown fields")],
)
def test_invalid_cue_file_is_rejected(tmp_path, change, message):
    bad = tmp_path / "cues.yaml"
    data = yaml.safe_load((REPO / "ragreports" / "data" / "brief_cues.yaml").read_text(encoding="utf-8"))
    change(data)
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_cues(bad)


@pytest.mark.parametrize("furniture", ["（此件主动公开）", "(此件公开发布)", "特此报告。"])
def test_document_furniture_is_never_an_item(furniture):
    text = f"一、主要举措\n（一）加强学法。全年组织集中学法5次。\n{furniture}\n"
    doc = Document("d", "d.txt", text, text, "0", Meta())
    brief = summarize(doc, [])
    quotes = [ev.quote for f in ("measures", "leadership", "shortcomings", "next_year", "other")
              for it in getattr(brief, f) for ev in it.evidence]
    assert any("集中学法5次" in q for q in quotes)
    assert not any(furniture.strip("。") in q for q in quotes)
