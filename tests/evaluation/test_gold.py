"""Gold files (spec/gold-format.md): validation with useful errors, suite loading, YAML dates, accepted values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ragreports.errors import GoldFormatError
from ragreports.evaluation.gold import SECTION_NAMES, load_gold_file, load_suite

from conftest import DEV_SUITE

GOOD = """\
report: a.txt
meta:
  issuer: 常州市科学技术局
  region: 常州市
  year: 2024
  published: 2025-03-06
facts:
  - label: 集中学习次数
    value: 5
    unit: 次
    approx: false
    quote: 共组织集中学习5次
  - label: 宣传资料
    value: 3000
    unit: 份
    approx: true
    quote: 普法宣传资料3000余份
questions:
  - question: 共组织了几次集中学习？
    answer: 5次
    quote: 共组织集中学习5次
sections:
  measures:
    - 共组织集中学习5次
  next_year: [高质量开展条例宣贯工作]
"""


def make_suite(root: Path, golds: dict[str, str], reports: tuple[str, ...] = ("a.txt",)) -> Path:
    (root / "reports").mkdir(parents=True)
    (root / "gold").mkdir()
    for r in reports:
        (root / "reports" / r).write_text("报告正文", encoding="utf-8")
    for name, text in golds.items():
        (root / "gold" / name).write_text(text, encoding="utf-8")
    return root


def test_dev_suite_loads():
    suite = load_suite(DEV_SUITE)
    assert suite.name == "dev"
    assert [g.report for g in suite.gold] == sorted(p.name for p in (DEV_SUITE / "reports").iterdir())
    assert suite.warnings == [] and suite.reports_without_gold == []
    for g in suite.gold:
        assert g.facts and g.questions and g.sections.points()
        assert isinstance(g.meta.year, int)
        assert g.meta.published is None or len(g.meta.published) == 10  # YAML date -> "YYYY-MM-DD"


def test_good_file_parses_dates_and_defaults(tmp_path):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD})
    g = load_suite(root).gold[0]
    assert g.meta.published == "2025-03-06"  # unquoted YAML date (datetime.date) becomes the ISO string
    assert g.meta.accepted("issuer") == ["常州市科学技术局"]
    assert g.facts[1].approx is True and g.facts[1].value == 3000.0
    assert g.sections.measures == ["共组织集中学习5次"] and g.sections.shortcomings == []
    assert g.sections.points()[-1] == ("next_year", "高质量开展条例宣贯工作")


def test_facts_null_or_missing_means_not_annotated_and_empty_list_means_none(tmp_path):
    head = GOOD.split("facts:")[0]
    rest = "questions:" + GOOD.split("questions:")[1]
    root = make_suite(tmp_path / "s", {"a.yaml": head + "facts: null\n" + rest, "b.yaml": head.replace("a.txt", "b.txt")
                                       + rest, "c.yaml": head.replace("a.txt", "c.txt") + "facts: []\n" + rest},
                      reports=("a.txt", "b.txt", "c.txt"))
    a, b, c = load_suite(root).gold
    assert a.facts is None and b.facts is None and c.facts == []


def test_unanswerable_question(tmp_path):
    text = GOOD.replace("questions:\n", "questions:\n  - {question: 共招录了几名公务员？, answer: null, quote: null}\n")
    q = load_suite(make_suite(tmp_path / "s", {"a.yaml": text})).gold[0].questions
    assert [x.answerable for x in q] == [False, True] and q[0].quote is None


def test_accepted_value_lists_and_nulls(tmp_path):
    text = GOOD.replace("issuer: 常州市科学技术局", "issuer: [中共常州市科学技术局党组, 常州市科学技术局]") \
               .replace("published: 2025-03-06", "published: null").replace("year: 2024", "year: [2024, '2023']")
    g = load_gold_file(make_suite(tmp_path / "s", {"a.yaml": text}) / "gold" / "a.yaml")
    assert g.meta.accepted("issuer") == ["中共常州市科学技术局党组", "常州市科学技术局"]
    assert g.meta.accepted("published") is None
    assert g.meta.accepted("year") == [2024, 2023]


def test_published_quoted_string_and_list_of_dates(tmp_path):
    text = GOOD.replace("published: 2025-03-06", "published: [2025-03-06, '2025-03-07']")
    g = load_gold_file(make_suite(tmp_path / "s", {"a.yaml": text}) / "gold" / "a.yaml")
    assert g.meta.accepted("published") == ["2025-03-06", "2025-03-07"]


@pytest.mark.parametrize("old,new,where,problem", [
    ("facts:", "facs:", "facs", "unknown field"),
    ("    approx: false\n", "    approx: false\n    approximately: true\n", "facts[0].approximately", "unknown field"),
    ("    value: 3000\n", "    value: 3000余\n", "facts[1].value", "plain number"),
    ("    value: 5\n", "", "facts[0].value", "missing"),
    ("  published: 2025-03-06\n", "", "meta.published", "write null"),
    ("  year: 2024", "  year: twenty", "meta.year", "year"),
    ("  year: 2024", "  year: 1800", "meta.year", "out of range"),
    ("published: 2025-03-06", "published: 2025/03/06", "meta.published", "YYYY-MM-DD"),
    ("published: 2025-03-06", "published: 2025-02-30", "meta.published", "YYYY-MM-DD"),
    ("issuer: 常州市科学技术局", "issuer: []", "meta.issuer", "must not be empty"),
    ("issuer: 常州市科学技术局", "issuer: [常州市科学技术局, null]", "meta.issuer", "must not contain null"),
    ("    answer: 5次", "    answer: ''", "questions[0].answer", "non-empty"),
    ("  next_year:", "  next_years:", "sections.next_years", "unknown field"),
    ("    - 共组织集中学习5次\n  next_year", "    - ''\n  next_year", "sections.measures", "non-empty quote"),
    ("report: a.txt", "report: reports/a.txt", "report", "bare file name"),
    ("    answer: 5次", "    answer: null", "questions[0]", "both null"),  # an unanswerable question has no quote
    ("    quote: 共组织集中学习5次\nsections", "    quote: null\nsections", "questions[0]", "both null"),
    ("    approx: true", "    approx: maybe", "facts[1].approx", "bool"),
])
def test_malformed_file_names_file_field_and_problem(tmp_path, old, new, where, problem):
    assert old in GOOD
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD.replace(old, new, 1)})
    with pytest.raises(GoldFormatError) as ei:
        load_suite(root)
    msg = str(ei.value)
    assert "a.yaml" in msg
    assert f"{where}:" in msg
    assert problem.lower() in msg.lower()


@pytest.mark.parametrize("text,problem", [
    ("report: a.txt\nmeta: [1, 2\n", "not valid YAML at line"),
    ("- report: a.txt\n", "must be a YAML mapping"),
    ("", "must be a YAML mapping"),
])
def test_unparseable_files(tmp_path, text, problem):
    root = make_suite(tmp_path / "s", {"a.yaml": text})
    with pytest.raises(GoldFormatError, match=problem):
        load_suite(root)


def test_all_bad_files_are_reported_before_any_work(tmp_path):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD.replace("facts:", "facs:"),
                                       "b.yaml": GOOD.replace("report: a.txt", "report: b.txt")
                                                     .replace("year: 2024", "year: x")},
                      reports=("a.txt", "b.txt"))
    with pytest.raises(GoldFormatError) as ei:
        load_suite(root)
    assert "a.yaml" in str(ei.value) and "b.yaml" in str(ei.value)


def test_gold_for_missing_report_is_an_error(tmp_path):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD.replace("report: a.txt", "report: zz.txt")})
    with pytest.raises(GoldFormatError, match=r"a\.yaml: report: 'zz\.txt' is not a file"):
        load_suite(root)


def test_two_gold_files_for_one_report_is_an_error(tmp_path):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD, "a2.yaml": GOOD})
    with pytest.raises(GoldFormatError, match="already annotated"):
        load_suite(root)


def test_report_without_gold_is_a_warning(tmp_path):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD}, reports=("a.txt", "b.pdf", "c.html"))
    (root / "reports" / ".DS_Store").write_text("x")
    suite = load_suite(root)
    assert [g.report for g in suite.gold] == ["a.txt"]
    assert suite.reports_without_gold == ["b.pdf", "c.html"]
    assert any("b.pdf" in w and "no gold" in w for w in suite.warnings)


def test_gold_not_named_after_report_is_a_warning(tmp_path):
    suite = load_suite(make_suite(tmp_path / "s", {"other.yaml": GOOD}))
    assert suite.gold[0].report == "a.txt"
    assert any("other.yaml" in w and "a.yaml" in w for w in suite.warnings)


@pytest.mark.parametrize("missing", ["reports", "gold"])
def test_suite_needs_both_folders(tmp_path, missing):
    root = make_suite(tmp_path / "s", {"a.yaml": GOOD})
    shutil.rmtree(root / missing)
    with pytest.raises(GoldFormatError, match=f"missing {missing}/"):
        load_suite(root)


def test_empty_gold_folder_and_missing_suite(tmp_path):
    with pytest.raises(GoldFormatError, match="no gold files"):
        load_suite(make_suite(tmp_path / "s", {}))
    with pytest.raises(GoldFormatError, match="not a folder"):
        load_suite(tmp_path / "nope")


def test_section_names_match_the_brief_template():
    assert SECTION_NAMES == ("measures", "leadership", "shortcomings", "next_year", "other")
