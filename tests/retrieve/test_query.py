"""Question understanding: years, issuer/region routing, keywords, answer type and measure (table-driven)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragreports.retrieve.query import asked_measure, find_years, question_type, split_units, understand
from ragreports.types import Meta, SearchResult

DOCS = [
    ("km24", Meta("昆明市科学技术局", "昆明市", 2024, "2025-03-06")),
    ("km23", Meta("昆明市科学技术局", "昆明市", 2023, "2024-02-01")),
    ("kmsf24", Meta("昆明市司法局", "昆明市", 2024, None)),
    ("jh20", Meta("江门市江海区科学技术局", "江门市江海区", 2020, "2021-02-26")),
    ("cz24", Meta("常州市科学技术局", "常州市", 2024, None)),
    ("hb21", Meta("中共鹤壁市科学技术局党组", None, 2021, None)),
]


@pytest.mark.parametrize("text, years", [
    ("2024年昆明市登记技术合同多少项？", (2024,)),
    ("制定市科技局2023年度法治政府建设工作计划", (2023,)),
    ("二〇二四年工作打算", (2024,)),
    ("2019年计划与2018年相比", (2019, 2018)),
    ("去年登记技术合同多少项？", ()),  # relative years have no anchor
    ("受理“12345”便民服务热线多少件？", ()),
    ("2025年1月1日起施行", (2025,)),
])
def test_find_years(text, years):
    assert find_years(text) == years


@pytest.mark.parametrize("question, qtype", [
    ("2024年常州市科技局共组织了几次集中学习？", "number"),
    ("2024年昆明市技术合同成交额是多少？", "number"),
    ("“浙里办”APP推广完成率是多少？", "number"),
    ("研发投入占比多大？", "number"),
    ("《常州市科技创新促进条例》自何时起施行？", "date"),
    ("条例什么时候正式施行？", "date"),
    ("法治工作领导小组由谁担任组长？", "who"),
    ("江海区科技局的主要负责人是谁？", "who"),
    ("行政执法工作由哪个部门负责？", "who"),
    ("与哪家律师事务所签订了法律顾问合同？", "what"),
    ("如何落实法律顾问制度？", "what"),
    ("是否作出过行政处罚决定？", "what"),
    ("如何提高行政效率？", "what"),  # 效率 is not a rate question
    ("《几何原本》讲了什么？", "what"),  # cue words inside a quoted title do not count
])
def test_question_type(question, qtype):
    assert question_type(question) == qtype


@pytest.mark.parametrize("question, measure", [
    ("登记技术合同多少项？", "项"),
    ("共组织了几次集中学习？", "次"),
    ("人均公共法律知识培训多少学时？", "学时"),
    ("直播累计吸引多少人次在线观看？", "人次"),
    ("宣讲法律法规多少场次？", "场次"),
    ("有几名公职律师？", "名"),
    ("组织多少个企业项目申报？", "个"),
    ("技术合同成交额是多少？", "元"),
    ("设立了多少科技信贷风险准备金？", "元"),
    ("投入了多少万元？", "元"),  # scale word dropped
    ("全社会研发投入强度是多少？", "%"),
    ("推广完成率是多少？", "%"),
    ("推广数是多少？", None),
])
def test_asked_measure(question, measure):
    assert asked_measure(question) == measure


@pytest.mark.parametrize("region, units", [
    ("江门市江海区", ["江门市", "江海区"]),
    ("昆明市", ["昆明市"]),
    ("上海市浦东新区", ["上海市", "浦东新区"]),
    ("阿拉善盟", ["阿拉善盟"]),
])
def test_split_units(region, units):
    assert split_units(region) == units


ROUTING = [
    # question, doc_ids (the named issuer/region: searched first), boost (a higher-level area), unknown places
    ("2024年昆明市科技局登记技术合同多少项？", ("km24", "km23"), (), ()),  # years rank passages, never documents
    ("2024年昆明市科学技术局登记技术合同多少项？", ("km24", "km23"), (), ()),
    ("2024年昆明科技局登记技术合同多少项？", ("km24", "km23"), (), ()),  # region short form
    ("2024年昆明市司法局开展了几次普法活动？", ("kmsf24",), (), ()),  # the organ decides between bureaus
    ("2024年昆明市开展了几次普法活动？", ("km24", "km23", "kmsf24"), (), ()),  # region only: every bureau
    ("江门市科技局委托和下放到江海区科技线的管理职权共有多少项？", ("jh20",), (), ()),
    ("2020年江海区科技局的主要负责人是谁？", ("jh20",), (), ()),
    ("2020年江门市有多少家企业完成统计上报？", (), ("jh20",), ()),  # higher-level area only: boost
    ("2021年鹤壁市科技局组织了几次学法？", ("hb21",), (), ()),  # issuer only, 中共…党组 stripped
    ("2024年登記技術合同多少項？", (), (), ()),  # a year alone routes no document (Traditional read too)
    ("2024年北京市科技局办理了多少件行政复议案件？", (), (), ("北京市",)),  # a place no report's metadata knows
    ("2024年江门市蓬江区科技局受理了多少件申请？", (), ("jh20",), ("蓬江区",)),  # another district of the city
    ("2023年雄安新区地区生产总值是多少？", (), (), ("雄安新区",)),  # a functional zone
    ("2017年水利部修订发布了什么名录？", (), (), ("水利部",)),  # a central-government body
    ("2022年烟台市新增城镇就业多少人？", (), (), ("烟台市",)),  # 新增城镇 hides no 增城
    ("某市的GDP是多少？", (), (), ()),  # names nothing: answering decides
    ("《江门高新区企业创新能力评估研究》由哪家机构开展？", (), ("jh20",), ()),  # a known place in a title routes
    ("《杭州市科技创新条例》共有多少条？", (), (), ()),  # an unknown place inside a title is no mention
]


@pytest.mark.parametrize("question, doc_ids, boost, unknown", ROUTING)
def test_routing(question, doc_ids, boost, unknown):
    plan = understand(question, DOCS)
    assert set(plan.doc_ids) == set(doc_ids)
    assert set(plan.boost_doc_ids) == set(boost)
    assert plan.unknown_places == unknown


def _passage(doc_id, text, years=(), kind="", mentions=()):
    return SearchResult(doc_id, f"/r/{doc_id}.txt", "", text, 0, len(text), 1.0, years, kind, mentions)


@pytest.mark.parametrize("question, passage, allowed", [
    # the named report, a year it is about
    ("2024年昆明市科技局登记技术合同多少项？", _passage("km24", "登记技术合同13311项。", (2024,)), True),
    # the named report, other years only: the answer is not there
    ("2019年昆明市科技局登记技术合同多少项？", _passage("km24", "登记技术合同13311项。", (2024,)), False),
    ("2019年昆明市科技局登记技术合同多少项？", _passage("km24", "比2019年增长", (2024,), "", (2019,)), True),
    # a passage that does not know its years is not ruled out by them
    ("2019年昆明市科技局登记技术合同多少项？", _passage("km24", "登记技术合同13311项。"), True),
    # a report of another place is ruled out, unless its passage names the place asked about
    ("2024年北京市科技局登记技术合同多少项？", _passage("km24", "登记技术合同13311项。", (2024,)), False),
    ("2024年北京市科技局登记技术合同多少项？", _passage("km24", "与北京市科技局共建平台。", (2024,)), True),
    # a higher-level area allows its district's report, unless the question names another district there
    ("2020年江门市有多少家企业完成统计上报？", _passage("jh20", "完成统计上报126家。", (2020,)), True),
    ("2020年江门市蓬江区科技局受理了多少件申请？", _passage("jh20", "受理申请12件。", (2020,)), False),
    # another organ of the named place is ruled out, unless the passage names it
    ("2024年昆明市统计局发布了多少条信息？", _passage("km24", "公开信息56条。", (2024,)), False),
    ("2024年昆明市统计局发布了多少条信息？", _passage("km24", "昆明市统计局发布信息56条。", (2024,)), True),
    # a report whose metadata names no place cannot be ruled out by a place
    ("2024年北京市科技局登记技术合同多少项？", _passage("open", "登记技术合同13311项。", (2024,)), True),
])
def test_plan_allows_passages_on_evidence(question, passage, allowed):
    docs = DOCS + [("open", Meta(None, None, 2024, None))]
    assert understand(question, docs).allows(passage) is allowed


@pytest.mark.parametrize("question, kind", [
    ("龙岗区2024年地区生产总值增长的预期目标是多少？", "plan"),
    ("2023年龙岗区实现地区生产总值多少？", "result"),
    ("2022年广东省地区生产总值预计达到多少？", "result"),  # 预计 estimates a result
    ("《2024年工作计划》印发了几份？", "result"),  # a plan inside a quoted title asks for nothing
])
def test_kind_of_answer_asked(question, kind):
    assert understand(question, DOCS).kind == kind


@pytest.mark.parametrize("question, present, absent", [
    ("2024年常州市科技局共组织了几次集中学习？", ["集中学习"], ["常州", "2024", "几次", "科技局"]),
    ("2024年常州市科技局“科技先锋书记普法服务直通车”直播累计吸引多少人次在线观看？",
     ["科技先锋书记普法服务直通车", "直播", "观看"], ["多少", "常州市"]),
    ("2024年昆明市技术合同成交额是多少？", ["技术", "合同", "成交额"], ["是多少", "昆明市", "多少"]),
    ("常州市科技局法治工作领导小组由谁担任组长？", ["领导小组", "组长"], ["由谁", "谁", "科技局"]),
    ("2020年舟山市科技局是否作出过行政处罚决定？", ["行政处罚", "决定"], ["是否", "舟山市"]),
])
def test_keywords(question, present, absent):
    docs = DOCS + [("zs20", Meta("舟山市科学技术局", "舟山市", 2020, None))]
    kw = understand(question, docs).keywords
    for w in present:
        assert w in kw
    for w in absent:
        assert all(w not in k for k in kw), (w, kw)


def test_plan_fields_for_a_number_question():
    plan = understand("2024年昆明市科技局行政执法人员人均公共法律知识培训多少学时？", DOCS)
    assert plan.years == (2024,)
    assert plan.qtype == "number" and plan.measure == "学时"
    assert "昆明市科技局" in plan.places
    assert plan.text.startswith("2024年昆明市科技局")


def test_no_known_documents():
    plan = understand("2024年昆明市科技局登记技术合同多少项？", [])
    assert plan.doc_ids == () and plan.boost_doc_ids == ()
    assert plan.qtype == "number" and plan.measure == "项"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("2024年昆明市科技局江海区多少几次谁何时《》“”的项件元%？ ")), max_size=40))
def test_understand_is_total_and_routes_to_known_docs(question):
    plan = understand(question, DOCS)
    known = {d for d, _ in DOCS}
    assert set(plan.doc_ids) <= known and set(plan.boost_doc_ids) <= known
    assert not set(plan.doc_ids) & set(plan.boost_doc_ids)
    assert plan.kind in {"plan", "result"}
    assert plan.qtype in {"number", "date", "who", "what"}
    assert understand(question, DOCS) == plan  # deterministic
