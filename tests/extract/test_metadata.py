"""Report metadata: issuer (full official name), region, year reported on, publication date, title."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragreports.extract.metadata import extract_meta, find_published, find_title, find_year
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
        ("区科技局2020年法治政府建设年度报告\n" + BODY + "完善《江海区科技局党组工作规则》。\n",
         "江海区科学技术局", "江海区"),
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
