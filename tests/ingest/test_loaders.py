"""Loading: discovery of files, encoding detection on real report sentences, HTML/PDF/DOCX flattening, and
errors that say what to do. Fixtures are generated into tmp_path."""

from __future__ import annotations

import hashlib
import io
import os
import re
from functools import lru_cache
from pathlib import Path

import pytest

from ragreports.errors import EmptyDocumentError, LoadError
from ragreports.ingest.loaders import SUPPORTED, decode_text, discover, html_to_text, load_file, plausibility
from ragreports.text.cleaning import clean

DEV_REPORTS = sorted((Path(__file__).resolve().parents[2] / "eval" / "suites" / "dev" / "reports").glob("*.txt"))

# Real sentences from the dev reports (Simplified; Traditional versions made with OpenCC s2t).
SENTENCES = [
    "2024年,共组织集中学习5次,认真学习《中华人民共和国安全生产法》等相关内容。",
    "明确每月至少进行1次法治专题学习,将学法、用法与依法行政结合起来。",
    "在局党组会议及局党组理论中心学习会议中集中开展法治学习9次。",
    "全年开展《党政领导干部选拔任用工作条例》等领导班子集体学习法律法规和依法行政知识8次",
    "2018年，市科技局在市委市政府的正确领导下，在市法制办的具体指导下，紧紧围绕建设法治政府的目标",
    "累计吸引9.98万人次在线观看与积极参与,普法人数和普法效果量质并举。",
    "设立1500万元科技信贷风险准备金",
    "三、落实行政审批事项和管理职权目录",
]


@lru_cache(maxsize=1)
def _opencc_s2t():
    import opencc

    return opencc.OpenCC("s2t")


def _s2t(text: str) -> str:
    return _opencc_s2t().convert(text)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# --- discovery -------------------------------------------------------------------------------------------


def test_discover_expands_folders_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["b/2.txt", "b/1.md", "a.html", "c/deep/x.PDF", "c/y.docx", ".hidden/z.txt", "b/.secret.txt",
                 "notes.xlsx", "old.doc", "c/image.png", "README"]:
        _write(tmp_path, name, b"x")
    files, errors = discover([tmp_path])
    rel = [str(f.relative_to(tmp_path.resolve())) for f in files]
    assert rel == ["a.html", "b/1.md", "b/2.txt", "c/deep/x.PDF", "c/y.docx"]
    assert errors == []  # unsupported files inside a folder are skipped silently
    assert all(f.is_absolute() for f in files)
    assert discover([tmp_path]) == (files, errors)  # deterministic


def test_discover_reports_missing_and_unsupported_explicit_paths(tmp_path: Path) -> None:
    doc = _write(tmp_path, "old.doc", b"x")
    xlsx = _write(tmp_path, "t.xlsx", b"x")
    txt = _write(tmp_path, "r.txt", "报告".encode())
    files, errors = discover([doc, str(tmp_path / "nope.txt"), txt, xlsx, txt])
    assert files == [txt.resolve()]  # deduplicated
    messages = dict(errors)
    assert messages[str(doc)] == "unsupported file type .doc; convert it to .docx/.pdf/.txt"
    assert messages[str(xlsx)].startswith("unsupported file type .xlsx")
    assert "no such file" in messages[str(tmp_path / "nope.txt")]


def test_supported_extensions() -> None:
    assert {".txt", ".md", ".html", ".htm", ".pdf", ".docx"} == SUPPORTED


# --- encodings -------------------------------------------------------------------------------------------

ENCODINGS = [
    ("utf-8", False, "utf-8"),
    ("utf-8-sig", False, "utf-8-sig"),
    ("utf-16", False, "utf-16-le"),  # Python writes a little-endian BOM
    ("utf-16-le", False, "utf-16-le"),  # no BOM
    ("utf-16-be", False, "utf-16-be"),  # no BOM
    ("gbk", False, "gb18030"),
    ("gb18030", False, "gb18030"),
    ("big5", True, "big5"),
    ("gb18030", True, "gb18030"),  # Traditional text saved as GB18030 is still GB18030
]


@pytest.mark.parametrize(("codec", "traditional", "expected"), ENCODINGS)
@pytest.mark.parametrize("sentence", SENTENCES, ids=[f"sentence{i}" for i in range(len(SENTENCES))])
def test_decode_real_sentences(sentence: str, codec: str, traditional: bool, expected: str) -> None:
    text = _s2t(sentence) if traditional else sentence
    decoded, encoding = decode_text(text.encode(codec))
    assert decoded == text
    assert encoding == expected


def test_gb18030_only_characters(tmp_path: Path) -> None:
    text = "全市登记技术合同13311项𠀀,成交额176.73亿元€。" * 3  # 𠀀 and € need GB18030 four-byte codes
    p = _write(tmp_path, "r.txt", text.encode("gb18030"))
    doc = load_file(p)
    assert (doc.text, doc.encoding) == (text, "gb18030")


@pytest.mark.parametrize("path", DEV_REPORTS, ids=[p.stem for p in DEV_REPORTS])
@pytest.mark.parametrize("codec", ["gbk", "utf-16", "big5"])
def test_whole_dev_reports_in_legacy_encodings(tmp_path: Path, path: Path, codec: str) -> None:
    text = path.read_text(encoding="utf-8")
    if codec != "utf-16":  # GBK and Big5 have no NBSP: a lossy converter would write "?" (see test_cleaning)
        text = text.replace("\xa0", " ")
    if codec == "big5":
        text = _s2t(re.sub(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)", "", text))
    data = text.encode(codec, errors="replace")
    text = data.decode(codec)
    doc = load_file(_write(tmp_path, path.name, data))
    assert doc.text == text.lstrip("\ufeff")
    if codec == "gbk":  # same report, other bytes: the cleaned text is the same
        assert clean(doc.text) == clean(path.read_text(encoding="utf-8"))


def test_plausibility_separates_right_and_wrong_codecs() -> None:
    text = "".join(SENTENCES)
    assert plausibility(text) > 0.95
    assert plausibility(_s2t(text)) > 0.95
    wrong = _s2t(text).encode("big5").decode("gb18030", errors="replace")
    assert plausibility(wrong) < 0.5


@pytest.mark.parametrize("data", [bytes(range(256)) * 8, "Café résumé naïve façade, déjà vu.".encode("latin-1")])
def test_undecodable_bytes(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match="cannot decode.*re-save the file as UTF-8"):
        load_file(_write(tmp_path, "bad.txt", data))


# --- files and formats -----------------------------------------------------------------------------------


def test_raw_document_fields(tmp_path: Path) -> None:
    data = SENTENCES[0].encode("gbk")
    p = _write(tmp_path, "sub/report.md", data)
    doc = load_file(p)
    assert doc.source == str(p.resolve())
    assert doc.sha256 == hashlib.sha256(data).hexdigest()
    assert (doc.format, doc.encoding, doc.text) == ("md", "gb18030", SENTENCES[0])


@pytest.mark.parametrize("data", [b"", b"   \n\r\n  "])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(EmptyDocumentError, match="empty"):
        load_file(_write(tmp_path, "empty.txt", data))


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _write(tmp_path, "locked.txt", "报告".encode())

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(LoadError, match="permission denied; make the file readable"):
        load_file(p)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_for_real(tmp_path: Path) -> None:
    p = _write(tmp_path, "locked.txt", "报告".encode())
    p.chmod(0)
    with pytest.raises(LoadError, match="permission denied"):
        load_file(p)


def test_missing_and_unsupported(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        load_file(tmp_path / "missing.txt")
    with pytest.raises(LoadError, match=r"unsupported file type \.doc; convert it"):
        load_file(_write(tmp_path, "x.doc", b"x"))


# --- HTML ------------------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>区科技局2020年法治政府建设年度报告_网站</title><style>p {{ color: red }}</style></head>
<body><nav><a href="/">首页</a> &gt; <a>通知公告</a></nav>
<h1>区科技局2020年法治政府建设年度报告</h1>
<p>发布日期：2021-01-25&nbsp;&nbsp;来源：本网</p><script>var s = "<p>不是正文</p>";</script>
<div>一、推进法治<span>政府</span>建设工作<br>（一）加强组织&amp;领导</div>
<table><tr><td>集中学习</td><td>5次</td></tr><tr><td>合格率</td><td>100%</td></tr></table>
<ul><li>{item1}</li><li>第二项</li></ul><footer>版权所有</footer></body></html>"""

PAGE_LINES = ["区科技局2020年法治政府建设年度报告", "发布日期：2021-01-25\xa0\xa0来源：本网", "一、推进法治政府建设工作",
              "（一）加强组织&领导", "集中学习\t5次", "合格率\t100%", "{item1}", "第二项"]


def test_html_with_meta_charset(tmp_path: Path) -> None:
    item = "设立1500万元科技信贷风险准备金"
    p = _write(tmp_path, "page.htm", PAGE.format(item1=item).encode("gbk"))
    doc = load_file(p)
    assert doc.format == "html" and doc.encoding == "gb18030"
    assert doc.text.split("\n") == [line.format(item1=item) for line in PAGE_LINES]
    assert "不是正文" not in doc.text and "首页" not in doc.text and "版权所有" not in doc.text


def test_html_without_declaration_is_detected(tmp_path: Path) -> None:
    page = "<html><body><p>{}</p><p>{}</p></body></html>".format(*(_s2t(s) for s in SENTENCES[:2]))
    doc = load_file(_write(tmp_path, "page.html", page.encode("big5")))
    assert doc.encoding == "big5"
    assert doc.text == "\n".join(_s2t(s) for s in SENTENCES[:2])


def test_html_wrong_declaration_falls_back_to_detection(tmp_path: Path) -> None:
    page = f'<meta charset="utf-8"><p>{SENTENCES[0]}</p>'
    doc = load_file(_write(tmp_path, "page.html", page.encode("gbk")))
    assert (doc.encoding, doc.text) == ("gb18030", SENTENCES[0])


def test_html_resaved_as_utf8_with_stale_declaration(tmp_path: Path) -> None:
    page = f'<meta http-equiv="Content-Type" content="text/html; charset=gb2312"><p>{SENTENCES[2]}</p>'
    doc = load_file(_write(tmp_path, "page.html", page.encode("utf-8")))
    assert (doc.encoding, doc.text) == ("utf-8", SENTENCES[2])


def test_html_unclosed_head_and_pre() -> None:
    text = html_to_text("<html><head><title>t</title><body><p>正文</p><pre>第一行\n  第二行</pre></body>")
    assert text == "正文\n第一行\n第二行"  # <pre> keeps its line breaks


def test_html_without_text(tmp_path: Path) -> None:
    with pytest.raises(EmptyDocumentError, match="no text found"):
        load_file(_write(tmp_path, "empty.html", b"<html><script>render()</script></html>"))


# --- PDF -------------------------------------------------------------------------------------------------


def _cjk_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is drawn with a CID font (Identity-H) and a ToUnicode map, like the PDFs that
    government sites publish; the font is not embedded (text extraction does not need it)."""
    chars = sorted({c for line in lines for c in line})
    cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{len(chars)} beginbfchar\n" + "".join(f"<{ord(c):04X}> <{ord(c):04X}>\n" for c in chars)
            + "endbfchar\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode()
    ops = ["BT", "/F1 12 Tf", "72 770 Td"]
    for i, line in enumerate(lines):
        ops += (["0 -20 Td"] if i else []) + ["<" + "".join(f"{ord(c):04X}" for c in line) + "> Tj"]
    content = "\n".join([*ops, "ET"]).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [6 0 R] "
        b"/ToUnicode 7 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Identity) /Supplement 0 >> /DW 1000 >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_text_layer(tmp_path: Path) -> None:
    lines = ["2024年法治政府建设年度报告", SENTENCES[1]]
    doc = load_file(_write(tmp_path, "r.pdf", _cjk_pdf(lines)))
    assert (doc.format, doc.encoding) == ("pdf", "binary:pdf")
    assert [line.strip() for line in doc.text.split("\n")] == lines


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(LoadError, match=r"no text layer \(scanned PDF\?\); run OCR first"):
        load_file(_write(tmp_path, "scan.pdf", buf.getvalue()))


@pytest.mark.parametrize("data", [b"%PDF-1.4\n1 0 obj << /Type /Catalog", b"not a pdf at all", None])
def test_broken_pdf(tmp_path: Path, data: bytes | None) -> None:
    data = data if data is not None else _cjk_pdf(["报告"])[:150]  # truncated download
    with pytest.raises(LoadError, match="broken PDF.*re-export or re-download"):
        load_file(_write(tmp_path, "broken.pdf", data))


# --- DOCX ------------------------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("2024年法治政府建设年度报告", level=1)
    d.add_paragraph(SENTENCES[0])
    table = d.add_table(rows=2, cols=3)
    for (r, c), value in {(0, 0): "指标", (0, 1): "数值", (1, 0): "集中学习", (1, 1): "5次"}.items():
        table.cell(r, c).text = value
    table.cell(0, 2).merge(table.cell(1, 2)).text = "备注"
    d.add_paragraph("二、下一步计划")
    p = tmp_path / "r.docx"
    d.save(str(p))
    doc = load_file(p)
    assert (doc.format, doc.encoding) == ("docx", "binary:docx")
    assert doc.text.split("\n") == ["2024年法治政府建设年度报告", SENTENCES[0], "指标\t数值\t备注", "集中学习\t5次",
                                    "二、下一步计划"]


@pytest.mark.parametrize("data", [b"PK\x03\x04 not really a zip", b"{\\rtf1 an old Word file renamed}"])
def test_broken_docx(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match="not a real .docx.*save it again as .docx"):
        load_file(_write(tmp_path, "r.docx", data))


# --- the dev reports -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DEV_REPORTS, ids=[p.stem for p in DEV_REPORTS])
def test_dev_reports_load_as_utf8(path: Path) -> None:
    doc = load_file(path)
    assert (doc.encoding, doc.format) == ("utf-8", "txt")
    assert doc.text == path.read_text(encoding="utf-8")
