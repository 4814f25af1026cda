"""Report metadata: issuer (full official name), region, year reported on, publication date, title."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragreports.extract.cues import find_published, find_title, find_year
from ragreports.extract.metadata import extract_meta
from ragreports.text.cleaning import clean

DEV = Path(__file__).resolve().parents[2] / "eval" / "suites" / "dev"

BODY = "一、主要工作\n（一）加强组织领导。全年共组织集中学习5次。\n二、存在的不足\n学习还不够深入。\n"


@pytest.mark.parametrize(
    ("text", "issuer", "region"),
    [
        # full name in the title
        ("舟山市科学技术局2020年法治政府建设工作总结\n" + BODY, "舟山市科学技术局", "舟山市"),
        # short form in the title, place from a signature; short form expanded
        ("2018年度市科技局依法行政报告\n" + BODY + "江阴市科技局\n", "江阴市科学技术局", "江阴市"),
        # short form in the title, place from the body's mention of the same bureau inside a document title
        ("市科技局关于2024年法治政府建设工作情况的报告\n" + BODY + "制定《昆明市科学技术局学法清单》。\n",
         "昆明市科学技术局", "昆明市"),
        # no title: the most mentioned body; place from a repeated place name
        ("2024以来，市科技局认真落实《常州市2024年法治政府建设工作要点》。市科技局加强学习。市科技局扎实工作。\n"
         "与常州市公安局共同推进。依托江苏省市场监管信息平台。\n", "常州市科学技术局", "常州市"),
        # district level
        # a district's city from the division table (江海区 lies in 江门市)
        ("区科技局2020年法治政府建设年度报告\n" + BODY + "完善《江海区科技局党组工作规则》。\n",
         "江门市江海区科学技术局", "江门市江海区"),
        # a district's city from the city bodies the report names (twice or more)
        ("区科技局2020年法治政府建设年度报告\n" + BODY + "完善《江海区科技局党组工作规则》。江门市科技局委托下放。"
         "根据《江门市人民政府关于印发目录的通知》。\n", "江门市江海区科学技术局", "江门市江海区"),
        # other bureaus and short forms
        ("市人社局2023年法治政府建设情况报告\n" + BODY + "南京市人力资源和社会保障局\n",
         "南京市人力资源和社会保障局", "南京市"),
        ("县市场监管局2023年度法治政府建设工作报告\n" + BODY + "德清县市场监督管理局\n2024年1月15日\n",
         "德清县市场监督管理局", "德清县"),
        ("杭州市西湖区司法局2023年法治政府建设年度报告\n" + BODY, "杭州市西湖区司法局", "杭州市西湖区"),
        # province omitted from a city's region
        ("浙江省龙泉市发改委2022年法治政府建设工作总结\n" + BODY, "龙泉市发展和改革委员会", "龙泉市"),
        # a Party-group title
        ("中共鹤壁市科学技术局党组关于2023年度法治政府建设情况的报告\n" + BODY, "鹤壁市科学技术局", "鹤壁市"),
        # a Party-group signature with its date on the same line
        ("2021年法治政府建设工作报告\n" + BODY + "中共鹤壁市科学技术局党组 2022年1月10日\n", "鹤壁市科学技术局", "鹤壁市"),
        # a provincial bureau serves the province
        ("浙江省科学技术厅2023年度法治政府建设工作报告\n" + BODY, "浙江省科学技术厅", "浙江省"),
        # nothing names the place: null, never a guess
        ("市科技局2024年法治政府建设工作报告\n" + BODY, None, None),
        ("我局2024年依法行政工作总结\n" + BODY, None, None),
        # a body named only in passing is not the issuer
        ("2024年依法行政工作总结\n我局与南京市公安局联合执法。\n" + BODY, None, None),
    ],
)
def test_issuer_and_region(text: str, issuer: str | None, region: str | None) -> None:
    meta = extract_meta(text)
    assert (meta.issuer, meta.region) == (issuer, region)


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("区科技局2020年法治政府建设年度报告\n" + BODY, 2020),
        ("2018年度市科技局依法行政报告\n" + BODY, 2018),
        ("市科技局关于2024年法治政府建设工作情况的报告\n" + BODY, 2024),
        # no title: the opening of the body
        ("2024以来，市科技局深入学习贯彻习近平法治思想，认真落实我市《法治政府建设实施纲要(2021-2025年)》。\n" + BODY,
         2024),
        ("2023年，在市委、市政府的正确领导下，我局认真贯彻落实各项工作要求，持续推进法治政府建设。\n" + BODY, 2023),
        # next-year plan heading: the year before it
        ("现将有关情况报告如下：我局高度重视法治政府建设工作并取得了一定成效。\n" + BODY + "三、2025年工作打算\n继续推进。\n",
         2024),
        # published in N, reviewing the past year
        ("发布日期：2022-02-10\n一年来，我局坚持依法行政，认真履行各项职责，各项工作取得新进展新成效。\n" + BODY, 2021),
        # nothing says
        ("我局坚持依法行政，认真履行各项职责，各项工作取得新进展新成效，现报告如下。\n" + BODY, None),
    ],
)
def test_year(text: str, year: int | None) -> None:
    assert extract_meta(text).year == year


@pytest.mark.parametrize(
    ("text", "published"),
    [
        ("标题\n发布日期:2025-03-06\n正文。", "2025-03-06"),
        ("文章来源:本网 更新时间:2021-02-26 16:14 浏览数:-\n正文。", "2021-02-26"),
        ("发布时间：2023年4月7日\n正文。", "2023-04-07"),
        ("成文日期：2023/12/28\n正文。", "2023-12-28"),
        # a labelled date wins over a signature date
        ("发布日期:2021-01-25 浏览次数:\n正文。\n舟山市科学技术局\n2020年1229\n", "2021-01-25"),
        # dated signature
        ("正文。\n江阴市科技局\n2019年1月8日\n", "2019-01-08"),
        ("正文。\n某某局\n二〇二一年一月二十五日\n", "2021-01-25"),
        ("正文。\n某某局\n2020年1229\n", "2020-12-29"),
        ("正文。\n中共鹤壁市科学技术局党组 2022年1月10日\n", "2022-01-10"),
        # dates in the body are not publication dates
        ("正文。2024年10月11日，召开新闻发布会。该条例于2025年1月1日起施行。\n结束。", None),
        ("正文。\n某某局\n2020年1399\n", None),
    ],
)
def test_published(text: str, published: str | None) -> None:
    assert find_published(text) == published


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("首页 > 通知公告 > 通知公告详情\n市科技局关于2024年法治政府建设工作情况的报告\n发布日期:2025-03-06\n正文。",
         "市科技局关于2024年法治政府建设工作情况的报告"),
        ("当前位置:首页\n舟山市科学技术局2020年法治舟山(法治政府)工作总结\n发布日期:2021-01-25\n",
         "舟山市科学技术局2020年法治舟山(法治政府)工作总结"),
        ("2024以来,市科技局深入学习贯彻习近平法治思想,认真落实各项要求。\n一、本年度工作\n", None),
        ("一、主要做法与成效\n（一）加强组织领导\n", None),
    ],
)
def test_title(text: str, title: str | None) -> None:
    assert find_title(text) == title


def test_file_name_is_not_evidence() -> None:
    text = "市科技局2024年法治政府建设工作报告\n" + BODY
    assert extract_meta(text, source="/x/changzhou-kjj-2024.txt") == extract_meta(text)
    assert extract_meta(text, source="/x/changzhou-kjj-2024.txt").issuer is None


def test_year_falls_back_to_title_only_when_present() -> None:
    assert find_year("正文没有年份。", None, None) is None


@pytest.mark.skipif(not (DEV / "gold").exists(), reason="dev suite not present")
@pytest.mark.parametrize("name", sorted(p.stem for p in (DEV / "reports").glob("*.txt")))
def test_dev_suite_meta_regression(name: str) -> None:
    gold = yaml.safe_load((DEV / "gold" / f"{name}.yaml").read_text(encoding="utf-8"))["meta"]
    meta = extract_meta(clean((DEV / "reports" / f"{name}.txt").read_text(encoding="utf-8")))
    assert meta.year == gold["year"]
    assert meta.published == (None if gold["published"] is None else str(gold["published"]))
    # the spec accepts a name without its leading higher-level areas (江门市江海区 = 江海区)
    assert meta.region is not None and gold["region"].endswith(meta.region)
    assert meta.issuer is not None and gold["issuer"].endswith(meta.issuer)


# -- cues of reports the rules were not written on (places and bodies of no suite) --------------------------------
LONG = "全年共组织集中学习5次，开展法治宣传活动12场，发放宣传资料3000余份，各项工作取得新进展新成效。\n"


@pytest.mark.parametrize(
    ("text", "issuer", "region", "year", "published"),
    [
        # the first sentence names the body by its city's short name
        ("2022年以来，潍坊人力资源和社会保障局坚持以习近平法治思想为指导，全面贯彻落实中央、省、市关于法治政府建设"
         "的决策部署。\n" + LONG, "潍坊市人力资源和社会保障局", "潍坊市", 2022, None),
        # a breadcrumb names the body; a county-level city keeps its own name
        ("> 政务公开 | > 部门 | > 温岭市科技局 | > 法治政府建设年度报告 |\n2023年，温岭市科学技术局坚持依法行政，"
         "扎实推进法治政府建设工作，现将有关情况报告如下：\n" + LONG, "温岭市科学技术局", "温岭市", 2023, None),
        # a 来源 line and a 发布时间 label
        ("当前位置:\n汶上县科学技术局2024年度法治政府建设情况报告\n来源:汶上县科学技术局 发布时间:2025-01-16 16:25\n"
         "2024年，在县委、县政府的正确领导下，县科技局多措并举，圆满完成了各项任务指标，现将情况报告如下：\n" + LONG,
         "汶上县科学技术局", "汶上县", 2024, "2025-01-16"),
        # an index block: issuer and dates as bullets
        ("• MB0000000/2025-00001\n• 二七区科学技术局\n• 通知公告\n• 2025-03-05\n"
         "郑州市二七区科学技术局2024年度法治政府建设工作报告\n2024年，郑州市二七区科学技术局深入学习贯彻习近平法治思想，"
         "现将我局2024年度法治政府建设工作开展情况报告如下：\n" + LONG, "郑州市二七区科学技术局", "郑州市二七区", 2024,
         "2025-03-05"),
        # 市科技局 only; its documents carry the city's name; the superiors it answers to are not issuers
        ("市科技局2022年度法治政府建设情况报告\n根据安排，现将市科技局2022年度法治政府建设情况报告如下。\n"
         "在市委、市政府的坚强领导下，研究制定了《安顺市科学技术局法治宣传教育实施方案》，进一步明确法治宣传教育工作目标"
         "和重点任务。\n" + LONG, "安顺市科学技术局", "安顺市", 2022, None),
        # a district's own report: the place is the subject, the 来源 line names the office that posted it
        ("您所在的位置:政务公开 > 工作报告\n2020年宁河区法治政府建设情况报告\n文章来源:司法局 更新时间:2021/03/29 11:30:01\n"
         "2020年，宁河区坚持以习近平新时代中国特色社会主义思想为指导，深入学习贯彻党的十九大精神，依法全面履行政府职能。\n"
         + LONG, "天津市宁河区人民政府", "天津市宁河区", 2020, "2021-03-29"),
        # a dated signature at the end
        ("2021年法治政府建设工作报告\n" + LONG + "中共台州市路桥区科学技术局党组\n2022年1月10日\n",
         "台州市路桥区科学技术局", "台州市路桥区", 2021, "2022-01-10"),
        # a work report: the speaker names the government; the session line dates the delivery (about the year before)
        ("2024年嘉兴市政府工作报告\n——2024年1月5日在嘉兴市第九届人民代表大会第四次会议上\n各位代表：\n"
         "现在，我代表市人民政府向大会报告工作，请予审议。\n一、2023年工作回顾\n" + LONG, "嘉兴市人民政府", "嘉兴市",
         2023, "2024-01-05"),
        # a work report without title or date: the speaker and the review heading
        ("各位代表：\n现在，我代表南湖区人民政府向大会作工作报告，请予审议。\n一、过去一年工作回顾\n"
         "2023年是全面贯彻党的二十大精神的开局之年，一年来，我们坚持以习近平新时代中国特色社会主义思想为指导。\n" + LONG,
         "嘉兴市南湖区人民政府", "嘉兴市南湖区", 2023, None),
        # a provincial work report names the province only as 省 and by its short name
        ("各位代表：\n现在，我代表省人民政府，向大会报告工作，请予审议。\n一、2024年工作回顾\n"
         "过去一年，面对复杂严峻的外部环境，福建经济持续回升向好，福建各项事业取得新成效，全省生产总值增长5.5%。\n" + LONG,
         "福建省人民政府", "福建省", 2024, None),
        # a central-government body serves the whole country
        ("2018年，生态环境部深入学习宣传贯彻党的十九大精神，认真落实党中央、国务院决策部署，扎实推进法治政府建设。\n"
         + LONG, "生态环境部", "全国", 2018, None),
        # a functional zone the division table does not list belongs to the city the report names most
        ("各位代表：\n现在，我代表前海新区管理委员会，向大会作工作报告。\n一、2023年工作回顾\n前海新区经济运行稳中向好，"
         "为深圳建设先行示范区作出前海新区贡献，深圳各区协同发展。\n" + LONG, "深圳市前海新区管理委员会", "深圳市前海新区",
         2023, None),
    ],
)
def test_cues_anywhere_in_the_document(text, issuer, region, year, published):
    meta = extract_meta(text)
    assert (meta.issuer, meta.region, meta.year, meta.published) == (issuer, region, year, published)
    by_field = {e.field: e for e in meta.evidence}
    for f in ("issuer", "year", "published"):
        if getattr(meta, f) is not None:
            e = by_field[f]
            assert text[e.start:e.end] == e.quote and e.quote and 0 < e.confidence <= 1


def test_ambiguous_district_needs_its_city_in_the_text():
    # four cities have a 鼓楼区: the report must say which
    assert extract_meta("鼓楼区科学技术局2023年法治政府建设年度报告\n" + LONG).issuer is None
    text = "鼓楼区科学技术局2023年法治政府建设年度报告\n在福州市委、福州市政府领导下，福州市各区协同推进。\n" + LONG
    assert extract_meta(text).issuer == "福州市鼓楼区科学技术局"


def test_genre_sets_which_year_a_title_carries():
    # a rule-of-law report carries the year it is about; a work report the year it is delivered in
    assert extract_meta("2023年某县法治政府建设年度报告\n" + LONG).year == 2023
    wr = extract_meta("2024年某县政府工作报告\n各位代表：\n现在，我代表县人民政府向大会报告工作。\n" + LONG)
    assert wr.genre == "work_report" and wr.year == 2023


@pytest.mark.parametrize(
    ("text", "issuer", "year", "published", "genre"),
    [
        # a statistical bulletin: about the year in its title, signed and dated by the statistics bureau
        ("绍兴市2023年国民经济和社会发展统计公报\n绍兴市统计局\n2024年3月20日\n2023年，全市坚持稳中求进工作总基调，"
         "经济运行持续回升向好。全年实现地区生产总值7791亿元，比上年增长7.8%。\n", "绍兴市统计局", 2023, "2024-03-20",
         "statistics"),
        # an information-disclosure report of a county government office
        ("德清县人民政府办公室2023年政府信息公开工作年度报告\n索引号：001008003/2024-00012\n发布机构：德清县人民政府办公室\n"
         "成文日期：2024-01-25\n本报告根据《中华人民共和国政府信息公开条例》要求编制，内容包括总体情况、主动公开政府信息"
         "情况等。\n", "德清县人民政府办公室", 2023, "2024-01-25", "disclosure"),
    ],
)
def test_other_genres(text, issuer, year, published, genre):
    meta = extract_meta(text)
    assert (meta.issuer, meta.year, meta.published, meta.genre) == (issuer, year, published, genre)
