"""Official bodies in text: [place][zone][organ], level words, central bodies."""

from __future__ import annotations

import pytest

from ragreports.extract.bodies import body_name, body_region, find_bodies, zone_names


@pytest.mark.parametrize("text, names", [
    ("潍坊人力资源和社会保障局坚持依法行政。", ["潍坊市人力资源和社会保障局"]),  # a city's short name
    ("天津市宁河区人民政府办公室", ["天津市宁河区人民政府办公室"]),  # a chain of places
    ("浙江省温岭市发改委", ["温岭市发展和改革委员会"]),  # a county-level city drops its province
    ("原环境保护部深入学习", ["环境保护部"]),  # a central body, former name prefix
    ("中共嘉兴市南湖区科学技术局党组", ["嘉兴市南湖区科学技术局"]),
])
def test_named_bodies(text, names):
    assert [body_name(b) for b in find_bodies(text)] == names


def test_level_word_bodies_wait_for_their_place():
    (b,) = find_bodies("2022年，市科技局深入学习。")
    assert (b.level, b.organ, b.named, body_name(b)) == ("市", "科学技术局", False, None)


def test_a_zone_the_table_does_not_list_is_read_from_repetition():
    text = "我代表前海新区管理委员会作报告。前海新区发展迅速，前海新区开放合作。"
    assert list(zone_names(text)) == ["前海新区"]
    (b,) = [b for b in find_bodies(text) if b.zone]
    assert body_name(b) == "前海新区管理委员会" and body_region(b) == "前海新区"


def test_central_body_serves_the_country():
    (b,) = find_bodies("2018年，生态环境部扎实推进。")
    assert body_region(b) == "全国"


def test_an_organ_the_table_does_not_list_is_read_by_its_shape_after_a_place():
    assert [body_name(b) for b in find_bodies("烟台市林业和草原局坚持依法行政。")] == ["烟台市林业和草原局"]
    assert find_bodies("林业和草原局坚持依法行政。") == []  # no place written: no body
