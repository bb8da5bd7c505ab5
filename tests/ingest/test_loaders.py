from __future__ import annotations

import json
import os

import pytest

from ingest.errors import EmptyDocumentError, LoaderError, UnsupportedFileType
from ingest.loaders import load_file
from ingest.loaders.pdf import reflow
from ingest.loaders.text import parse_markdown
from tests import builders
from tests.paths import dataset

pytestmark = pytest.mark.unit


def sections_by_heading(doc):
    return {s.heading_path: s.text for s in doc.sections}


def test_markdown_headings_start_sections(tmp_path):
    [doc] = load_file(builders.write_markdown(tmp_path / "guide.md"))
    assert doc.title == "Shipping Guide"
    got = sections_by_heading(doc)
    assert "3 to 5 business days" in got[("Shipping Guide", "Standard shipping")]
    assert (
        got[("Shipping Guide", "Express shipping", "Cut-off times")] == "Orders placed before 2 pm ship the same day."
    )
    assert got[("Shipping Guide",)].startswith("Intro paragraph")


def test_markdown_fenced_code_is_not_a_heading_and_setext_is():
    title, sections = parse_markdown("Title\n=====\n\n```\n# not a heading\n```\n\nSub\n---\n\ntext")
    assert title == "Title"
    assert sections[0].heading_path == ("Title",) and "# not a heading" in sections[0].text
    assert sections[1].heading_path == ("Title", "Sub")


def test_html_visible_text_only_with_headings_and_canonical_url(tmp_path):
    [doc] = load_file(builders.write_html(tmp_path / "r.html"))
    assert doc.title == "Returns Policy"
    assert doc.url == "https://help.example.com/returns"
    text = "\n".join(s.text for s in doc.sections)
    assert "do not index me" not in text and "color: red" not in text and "Copyright" not in text and "Home" not in text
    got = sections_by_heading(doc)
    assert got[("Returns Policy",)] == "You can return any item within 30 days of delivery."
    assert "Keep the original packaging." in got[("Returns Policy", "Refunds")].split("\n\n")


def test_pdf_pages_are_sections_and_lines_are_reflowed(tmp_path):
    [doc] = load_file(builders.write_pdf(tmp_path / "w.pdf"))
    assert doc.title == "Warranty Policy"
    assert [s.page for s in doc.sections] == [1, 2]
    assert "covered for two years from the date of purchase" in doc.sections[0].text


def test_reflow_joins_soft_wraps_and_keeps_paragraph_ends():
    page = (
        "The warranty covers manu-\nfacturing defects in all of the products\nsold by us.\n"
        "A full-width line that ends with a dot.\nnext words.\n中文第一行\n继续。"
    )
    assert reflow(page) == (
        "The warranty covers manufacturing defects in all of the products sold by us.\n\n"
        "A full-width line that ends with a dot. next words.\n\n中文第一行继续。"
    )


def test_reflow_keeps_a_heading_off_the_paragraph_under_it():
    body = "Make a claim online at pinecrestsupply.example/warranty, or from My Orders by selecting"
    page = f"Last paragraph ends here.\n4. How to make a warranty claim\n{body}\nWarranty Claim next to the product."
    assert reflow(page).split("\n\n") == [
        "Last paragraph ends here.",
        "4. How to make a warranty claim",
        body + " Warranty Claim next to the product.",
    ]
    # each list item a paragraph, even after a full-width line that does not end like a sentence
    items = "- commercial, rental or institutional use, such as gear rented out by an outfitter and more;\n- loss."
    assert reflow(items).split("\n\n") == [
        "- commercial, rental or institutional use, such as gear rented out by an outfitter and more;",
        "- loss.",
    ]
    # a short line that only starts a sentence is not a heading: the next line does not start with a capital
    assert reflow("Orders ship\nwithin a day from our warehouse in Reno, Nevada, and arrive soon after that.") == (
        "Orders ship within a day from our warehouse in Reno, Nevada, and arrive soon after that."
    )


def test_docx_headings_paragraphs_and_tables(tmp_path):
    [doc] = load_file(builders.write_docx(tmp_path / "a.docx"))
    assert doc.title == "Account Help"
    got = sections_by_heading(doc)
    assert "Forgot password" in got[("Account Help", "Password reset")]
    assert "Plus | $5 per month" in got[("Account Help", "Deleting your account")]


def test_csv_faq_rows_with_english_headers(tmp_path):
    [doc] = load_file(builders.write_csv(tmp_path / "faq.csv"))
    assert len(doc.sections) == 3
    first = doc.sections[0]
    assert first.title == "How do I track my order?" and first.row == 2 and first.atomic
    assert first.text == "Use the tracking link in your shipping confirmation email."


def test_csv_semicolon_and_chinese_headers_with_extra_columns(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("类别;问题;答案\n发货;多久发货？;下单后24小时内发货。\n", encoding="utf-8-sig")
    [doc] = load_file(path)
    [row] = doc.sections
    assert (row.title, row.text, row.metadata) == ("多久发货？", "下单后24小时内发货。", {"类别": "发货"})


def test_xlsx_faq_rows(tmp_path):
    [doc] = load_file(builders.write_xlsx(tmp_path / "faq.xlsx"))
    assert [s.title for s in doc.sections] == ["怎么申请退货？", "发票怎么开？"]
    assert doc.sections[0].metadata == {"类别": "退货"}
    assert doc.sections[0].row == 2


def test_jsonl_records_are_documents_with_metadata(tmp_path):
    docs = load_file(builders.write_jsonl(tmp_path / "c.jsonl"), "c.jsonl")
    assert [d.doc_id for d in docs] == ["c.jsonl#d1", "c.jsonl#d2"]
    assert docs[1].url == "https://help.example.com/gift" and docs[1].metadata == {"lang": "zh"}
    assert docs[0].title == "Gift cards"


def test_json_list_of_records(tmp_path):
    [doc] = load_file(builders.write_json(tmp_path / "c.json"))
    assert doc.key == "c1" and doc.sections[0].text.startswith("Only one coupon")


def test_beir_corpus_loads_as_is():
    corpus = dataset("stackfaq") / "corpus.jsonl"
    docs = load_file(corpus, "corpus.jsonl")
    assert len(docs) == 125 and docs[0].key == "faq0" and docs[0].title


# ---- bad input: every kind is reported with the file and the reason ---------------------------------------
@pytest.mark.parametrize(
    "name, content, error, reason",
    [
        ("empty.txt", b"", EmptyDocumentError, "empty"),
        ("blank.md", b"  \n\n \n", EmptyDocumentError, "no text"),
        ("binary.txt", b"\x00\x01\x02binary\x00" * 50, LoaderError, "binary"),
        ("corrupt.pdf", b"%PDF-1.4\nthis is not really a pdf", LoaderError, "PDF"),
        ("garbage.pdf", os.urandom(2048), LoaderError, ""),
        ("corrupt.docx", b"PK\x03\x04 not a zip", LoaderError, "docx"),
        ("corrupt.xlsx", b"not a workbook", LoaderError, "xlsx"),
        ("image.png", b"\x89PNG\r\n\x1a\n", UnsupportedFileType, "unsupported file type '.png'"),
        ("bad.jsonl", b'{"_id": "1", "text": "ok"}\n{broken\n', LoaderError, "line 2: invalid JSON"),
        ("notext.jsonl", b'{"_id": "1", "title": "no text"}\n', LoaderError, "line 1: field 'text' is missing"),
        ("dupes.jsonl", b'{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', LoaderError, "duplicate record id"),
        ("noheader.csv", b"foo,bar\n1,2\n", LoaderError, "name them 'question' and 'answer'"),
        ("list.json", b"[1, 2]", LoaderError, "expected a JSON object"),
    ],
)
def test_bad_files_raise_loader_error_naming_file_and_reason(tmp_path, name, content, error, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as info:
        load_file(path)
    assert info.value.path == str(path)
    assert reason in str(info.value)


def test_scanned_pdf_without_text_layer_is_reported(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # drawing only, no text
    path = tmp_path / "scan.pdf"
    pdf.output(str(path))
    with pytest.raises(EmptyDocumentError, match="no text layer"):
        load_file(path)


def test_broken_symlink_is_unreadable(tmp_path):
    link = tmp_path / "gone.md"
    link.symlink_to(tmp_path / "missing.md")
    with pytest.raises(LoaderError, match="not a regular file"):
        load_file(link)


def test_legacy_gb18030_text_is_decoded(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_bytes("退货请在三十天内办理。".encode("gb18030"))
    [doc] = load_file(path)
    assert doc.sections[0].text == "退货请在三十天内办理。"


def test_every_supported_type_loads(tmp_path):
    files = builders.write_all_types(tmp_path)
    for ext, path in files.items():
        docs = load_file(path)
        assert docs and all(d.sections for d in docs), ext
    assert json.loads(files[".jsonl"].read_text().splitlines()[0])["_id"] == "d1"
