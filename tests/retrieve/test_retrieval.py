"""Hybrid retrieval: RRF, filters, routing, BM25 terms, the dense query, the LangChain wrapper (hash embedder)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ragreports.config import Settings
from ragreports.index.lexical import lexical_terms
from ragreports.retrieve.hybrid import QUOTED_SPAN, RRF_K, SearchFilters, as_langchain_retriever, dense_query, rrf_fuse
from ragreports.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reports"
DOCS = {"changzhou-kjj-2024", "jianghai-kjj-2020", "jiangyin-kjj-2018", "kunming-kjj-2024", "zhoushan-kjj-2020"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """The five sample reports in one index (hashing embedder), shared by the read-only tests below."""
    tmp = tmp_path_factory.mktemp("retrieval")
    w = Workspace(Settings(home=tmp / "home", cache_dir=tmp / "cache", embedder="hash", llm="none"))
    rep = w.ingest([SAMPLES])
    assert not rep.errors and {d.doc_id for d in rep.documents} == DOCS
    return w


# -- fusion ---------------------------------------------------------------------------------------------------------
def _ids(*names: str) -> list[tuple[tuple[str, int], float]]:
    return [((n, 0), 0.0) for n in names]


@pytest.mark.parametrize("rankings, expected", [
    # agreement beats a single first place: b is 2nd in both, a 1st in one only
    ([_ids("a", "b"), _ids("c", "b")], ["b", "a", "c"]),
    # a single ranking keeps its order
    ([_ids("x", "y", "z")], ["x", "y", "z"]),
    # ties (same ranks in mirrored lists) are broken by chunk id
    ([_ids("p", "q"), _ids("q", "p")], ["p", "q"]),
    # an empty ranking (no BM25 tokens) changes nothing
    ([_ids("m", "n"), []], ["m", "n"]),
])
def test_rrf_ordering(rankings, expected):
    fused = rrf_fuse(rankings)
    order = sorted(fused, key=lambda c: (-fused[c], c))
    assert [c[0] for c in order] == expected


def test_rrf_scores_are_reciprocal_ranks():
    fused = rrf_fuse([_ids("a", "b"), _ids("b")])
    assert fused[("a", 0)] == pytest.approx(1 / (RRF_K + 1))
    assert fused[("b", 0)] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))


# -- filters and routing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, doc", [
    ({"doc": "kunming-kjj-2024"}, "kunming-kjj-2024"),
    ({"year": 2018}, "jiangyin-kjj-2018"),
    ({"issuer": "舟山市科学技术局"}, "zhoushan-kjj-2020"),
    ({"issuer": "江海区"}, "jianghai-kjj-2020"),
    ({"year": 2020, "issuer": "舟山"}, "zhoushan-kjj-2020"),
])
def test_filters_restrict_results(ws, kwargs, doc):
    hits = ws.search("法律顾问 普法宣传 行政执法", k=10, **kwargs)
    assert hits and {h.doc_id for h in hits} == {doc}


def test_contradictory_filters_return_nothing(ws):
    assert ws.search("法律顾问", k=5, year=2018, issuer="昆明") == []


@pytest.mark.parametrize("question, docs", [
    ("2018年科技局开展了哪些普法宣传活动？", {"jiangyin-kjj-2018"}),  # a year alone: preference
    ("2020年科技局如何落实法律顾问制度？", {"jianghai-kjj-2020", "zhoushan-kjj-2020"}),
    ("江阴市科技局开展了哪些普法宣传活动？", {"jiangyin-kjj-2018"}),  # an issuer: filter
    ("昆明市科技局登记技术合同多少项？", {"kunming-kjj-2024"}),
    ("2020年舟山市科技局公开了多少条信息？", {"zhoushan-kjj-2020"}),
])
def test_routing_by_named_year_or_issuer(ws, question, docs):
    hits = ws.search(question, k=5)
    assert len(hits) == 5 and {h.doc_id for h in hits} <= docs


def test_a_named_year_ranks_passages_about_it_first_and_never_filters(ws):
    n_2018 = len(ws.chunks("jiangyin-kjj-2018"))
    hits = ws.search("2018年科技局开展了哪些普法宣传活动？", k=n_2018 + 3)
    assert [h.doc_id for h in hits[:5]] == ["jiangyin-kjj-2018"] * 5 and all(2018 in h.years for h in hits[:5])
    assert len(hits) == n_2018 + 3  # other reports fill: a year is evidence that orders, not a filter
    assert {h.doc_id for h in hits} - {"jiangyin-kjj-2018"}
    assert sum(h.doc_id == "jiangyin-kjj-2018" for h in hits) >= 3 * n_2018 // 4


def test_an_issuer_searches_its_reports_first_then_others_fill(ws):
    n = len(ws.chunks("kunming-kjj-2024"))
    hits = ws.search("昆明市科技局开展了哪些普法宣传活动？", k=n + 3)
    assert [h.doc_id for h in hits[:n]] == ["kunming-kjj-2024"] * n
    assert len(hits) == n + 3 and all(h.doc_id != "kunming-kjj-2024" for h in hits[n:])


def test_document_list_follows_ingest_and_delete(tmp_path):
    """The retriever caches the ready documents per index generation: a new or deleted report shows at once."""
    w = Workspace(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", embedder="hash", llm="none"))
    w.ingest([SAMPLES / "kunming-kjj-2024.txt"])
    assert {h.doc_id for h in w.search("法律顾问", k=5)} == {"kunming-kjj-2024"}
    w.ingest([SAMPLES / "zhoushan-kjj-2020.txt"])
    assert {h.doc_id for h in w.search("舟山市科技局的法律顾问", k=5)} == {"zhoushan-kjj-2020"}
    w.delete("zhoushan-kjj-2020")
    assert {h.doc_id for h in w.search("法律顾问", k=5)} == {"kunming-kjj-2024"}


def test_explicit_filter_wins_over_routing(ws):
    hits = ws.search("江阴市科技局开展了哪些普法宣传活动？", k=5, doc="kunming-kjj-2024")
    assert hits and {h.doc_id for h in hits} == {"kunming-kjj-2024"}


def test_no_bm25_tokens_is_logged_and_dense_still_answers(ws, caplog):
    assert lexical_terms("？？！……") == []
    with caplog.at_level(logging.WARNING, logger="ragreports.retrieve"):
        hits = ws.search("？？！……", k=3)
    assert len(hits) == 3
    assert any("no BM25 tokens" in r.getMessage() for r in caplog.records)


def test_dense_encoder_gets_the_question_without_routing_cues(ws):
    seen: list[str] = []
    inner = ws.retriever.embedder

    class Recording:
        name, dim = inner.name, inner.dim

        def embed_query(self, text):
            seen.append(text)
            return inner.embed_query(text)

    from ragreports.retrieve.hybrid import Retriever

    r = Retriever(ws.docstore, ws.vectors, ws.lexical, Recording())
    hits = r.search("2018年江阴市科技局梳理出多少项公共服务事项？", k=3)
    assert seen == ["梳理出多少项公共服务事项？"]
    assert hits and hits[0].doc_id == "jiangyin-kjj-2018" and "11项公共服务事项" in hits[0].text


# -- the dense query ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, places, expected", [
    ("2024年常州市科技局有几名公职律师？", ["常州市科技局"], "有几名公职律师？"),
    ("《常州市科技创新促进条例》共有多少条？", ["常州市"], "《常州市科技创新促进条例》共有多少条？"),
    ("“江阴科技课堂”培训2018年度共有多少人次？", ["江阴"], "“江阴科技课堂”培训 共有多少人次？"),
    ("二〇二〇年舟山市科技局公开了多少条信息？", ["舟山市科技局"], "公开了多少条信息？"),
    ("昆明市科技局", ["昆明市科技局"], "昆明市科技局"),  # nothing would be left: keep the question
    ("技术合同成交额是多少？", [], "技术合同成交额是多少？"),
])
def test_dense_query(text, places, expected):
    assert dense_query(text, places) == expected


@given(st.text(alphabet="江阴市科技局2018年《》“”条例课堂多少？ ", max_size=40))
def test_dense_query_keeps_quoted_titles(text):
    out = dense_query(text, ["江阴市", "科技局"])
    for m in QUOTED_SPAN.finditer(text):
        assert m.group(0) in out


# -- BM25 terms -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, present, absent", [
    ("《条例》共设十章七十六条", ["76", "#条", "#章"], ["七"]),  # Chinese numerals of counts in digits
    ("共有多少条？", ["#条"], []),  # a question asking for a count of 条
    ("有几名公职律师", ["#名"], []),
    ("组织多少个企业项目申报", ["#个"], []),
    ("设立了多少万元准备金", ["#元"], []),
    ("累计吸引9.98万人次在线观看", ["9.98", "#人次"], []),
    ("依照第三条规定", [], ["#条"]),  # ordinals are not counts
    ("2024年1月1日起施行", ["2024"], ["#年"]),  # calendar years are not counts
    ("一是加强学习", ["一是"], []),
])
def test_lexical_terms(text, present, absent):
    terms = lexical_terms(text)
    for t in present:
        assert t in terms
    for t in absent:
        assert t not in terms


def test_count_question_finds_chinese_numeral_passage(tmp_path):
    """BM25 alone: ``多少条`` meets ``七十六条`` (no shared word but the count of 条)."""
    import bm25s

    passages = ["《条例》共设十章七十六条，分为总则、附则。", "《条例》于2025年1月1日起施行，条例内容丰富。",
                "《条例》是一部重要的地方性法规，条例意义重大。"]
    bm = bm25s.BM25()
    bm.index([lexical_terms(p) for p in passages], show_progress=False)
    scores = bm.get_scores(lexical_terms("《条例》共有多少条？"))
    assert scores.argmax() == 0


# -- LangChain ------------------------------------------------------------------------------------------------------
def test_langchain_retriever_returns_documents_with_metadata(ws):
    from langchain_core.documents import Document as LCDocument

    lc = as_langchain_retriever(ws.retriever, k=4)
    docs = lc.invoke("昆明市技术合同成交额是多少？")
    assert len(docs) == 4 and all(isinstance(d, LCDocument) for d in docs)
    for d in docs:
        assert d.metadata["doc_id"] == "kunming-kjj-2024"
        assert {"source", "section", "start", "end", "score"} <= set(d.metadata) and "text" not in d.metadata
        text, _ = ws.docstore.text(d.metadata["doc_id"])
        assert text[d.metadata["start"]:d.metadata["end"]] == d.page_content


def test_langchain_retriever_composes_in_lcel(ws):
    from langchain_core.runnables import RunnableLambda

    filters = SearchFilters(doc_ids=frozenset({"zhoushan-kjj-2020"}))
    chain = as_langchain_retriever(ws.retriever, k=3, filters=filters) | RunnableLambda(
        lambda docs: [(d.metadata["doc_id"], len(d.page_content)) for d in docs])
    out = chain.invoke("法律顾问")
    assert len(out) == 3 and all(doc == "zhoushan-kjj-2020" and n > 0 for doc, n in out)


def test_langchain_retriever_in_worker_threads(ws):
    """LCEL batch runs the retriever in worker threads: the docstore connection must serve them."""
    lc = as_langchain_retriever(ws.retriever, k=2)
    out = lc.batch(["法律顾问", "行政执法"])
    assert [len(d) for d in out] == [2, 2]
