"""The one redaction (:mod:`ragreports.redaction`): key-like text, registered secrets and URL user-info are masked;
ordinary report text is not; the output stream redacts whole lines."""

from __future__ import annotations

import io

import pytest

from ragreports.redaction import RedactingStream, display_url, redact, redact_obj, register_secret


@pytest.mark.parametrize("text, leaked", [
    ("Authorization: Bearer abc.def-ghi_123456", "abc.def-ghi_123456"),
    ('{"authorization": "Basic dXNlcjpwYXNzd29yZA=="}', "dXNlcjpwYXNzd29yZA=="),
    ("calling https://alice:pa55w0rd@models.example.com/v1/chat", "pa55w0rd"),
    ("chroma at http://tok3nXYZ@127.0.0.1:8000", "tok3nXYZ"),
    ("key sk-proj-AbCdEf123456789 rejected", "AbCdEf123456789"),
    ("?api_key=zzzz9999yyyy&x=1", "zzzz9999yyyy"),
    ('{"api-key": "qwerty12345"}', "qwerty12345"),
    ("x-api-key: plainsecretvalue", "plainsecretvalue"),
])
def test_key_like_text_is_masked(text, leaked):
    assert leaked not in redact(text) and "***" in redact(text)


def test_registered_secrets_and_ordinary_text():
    register_secret("hunter2-but-longer")
    assert redact("the server said: hunter2-but-longer!") == "the server said: ***!"
    plain = "2024年全市登记技术合同13311项、合同成交额176.73亿元。see https://www.gov.cn/a?b=1"
    assert redact(plain) == plain
    assert redact_obj({"a": ["hunter2-but-longer", 3], "b": None}) == {"a": ["***", 3], "b": None}
    assert display_url("https://u:p@host:8443/v1") == "https://host:8443/v1"


def test_stream_redacts_whole_lines_even_when_written_in_pieces():
    buf = io.StringIO()
    out = RedactingStream(buf)
    for piece in ("token: Bearer abcdef", "ghijkl0123 end\nnext ", "line"):
        out.write(piece)
    assert buf.getvalue() == "token: Bearer *** end\n"  # a line is written only once it is whole
    out.flush()
    assert buf.getvalue().endswith("next line") and "abcdef" not in buf.getvalue()
