"""Chunk text as customers read it: tables in the shapes the loaders produce (Markdown, Word, HTML), lists,
Markdown markup, and headings that repeat the title."""

from __future__ import annotations

import pytest

from ingest.loaders import load_file
from rag.text.readable import (
    as_sentence,
    cut_at_word,
    flat_text,
    heading_trail,
    plain_inline,
    readable_line,
    readable_text,
    row_sentence,
    table_cells,
)
from rag.text.sentences import sentence_spans

pytestmark = pytest.mark.unit

SHIPPING_MD = """\
| Method | Delivery time | Cost |
|---|---|---|
| Standard | 3-5 business days | $5.95, free on orders of $50 or more |
| Express | 1-2 business days | $12.95 |

- The free shipping threshold is based on the order subtotal **after** coupons.
- Express orders travel with UPS"""


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentence_spans(text)]


def test_markdown_table_rows_become_sentences_that_pair_values_with_headers():
    assert readable_text(SHIPPING_MD).split("\n") == [
        "Standard — Delivery time: 3-5 business days; Cost: $5.95, free on orders of $50 or more.",
        "Express — Delivery time: 1-2 business days; Cost: $12.95.",
        "",
        "The free shipping threshold is based on the order subtotal after coupons.",
        "Express orders travel with UPS.",
    ]


def test_each_row_and_item_stays_one_sentence():
    assert sentences(readable_text(SHIPPING_MD)) == [
        "Standard — Delivery time: 3-5 business days; Cost: $5.95, free on orders of $50 or more.",
        "Express — Delivery time: 1-2 business days; Cost: $12.95.",
        "The free shipping threshold is based on the order subtotal after coupons.",
        "Express orders travel with UPS.",
    ]


def test_chinese_table_uses_chinese_punctuation_and_stays_one_sentence_per_row():
    text = "| 配送方式 | 承运商 | 运费 |\n|:---|:---:|---:|\n| 标准配送 | EMS | ¥88，订单满¥399免运费 |"
    assert readable_text(text) == "标准配送——承运商：EMS，运费：¥88，订单满¥399免运费。"
    assert len(sentences(readable_text(text))) == 1


def test_word_and_html_tables_have_blank_lines_between_rows_and_no_separator():
    text = (
        "Each store charges in its own currency.\n\n"
        "Store | Currency | Payment methods\n\n"
        "US store | US dollars (USD) | Visa, PayPal\n\n"
        "China store | Chinese yuan (CNY) | Alipay\n\n"
        "We do not accept cash."
    )
    assert readable_text(text) == (
        "Each store charges in its own currency.\n\n"
        "US store — Currency: US dollars (USD); Payment methods: Visa, PayPal.\n\n"
        "China store — Currency: Chinese yuan (CNY); Payment methods: Alipay.\n\n"
        "We do not accept cash."
    )


def test_rows_without_a_header_are_not_mistaken_for_one():
    # a chunk may start inside a table (overlap): its first row holds values, not headers
    text = "Standard | 3-5 business days | $5.95\n\nExpress | 1-2 business days | $12.95"
    assert readable_text(text) == "Standard: 3-5 business days; $5.95.\n\nExpress: 1-2 business days; $12.95."
    assert readable_text("开箱品和翻新品 | 所有品类 | 90天\n\n保修期自签收之日起计算。") == (
        "开箱品和翻新品：所有品类，90天。\n\n保修期自签收之日起计算。"
    )


def test_a_table_cut_after_its_header_keeps_the_header_words():
    assert readable_text("Rates:\n\n| Method | Cost |\n|---|---|") == "Rates:\n\nMethod, Cost."


def test_empty_cells_and_ragged_rows():
    header = ["Method", "Carrier", "Cost"]
    assert row_sentence(["Express", "", "$12.95"], header) == "Express — Cost: $12.95."
    assert row_sentence(["Express", "UPS", "$12.95", "tracked"], header) == (
        "Express — Carrier: UPS; Cost: $12.95; tracked."
    )
    assert row_sentence(["", "UPS", "$5"], header) == "Carrier: UPS; Cost: $5."
    assert row_sentence(["Express"], header) == "Express."
    assert table_cells("| a \\| b | c |") == ["a | b", "c"]


def test_tables_from_real_word_and_html_files(tmp_path):
    import docx

    document = docx.Document()
    document.add_paragraph("Plans and prices:")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("Plan", "Price", "Support"), ("Basic", "$0", "Email"), ("Plus", "$5 per month", "Chat")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(str(tmp_path / "plans.docx"))
    (tmp_path / "plans.html").write_text(
        "<html><body><h1>Plans</h1><table><tr><th>Plan</th><th>Price</th><th>Support</th></tr>"
        "<tr><td>Basic</td><td>$0</td><td>Email</td></tr>"
        "<tr><td>Plus</td><td>$5 per month</td><td>Chat</td></tr></table></body></html>",
        encoding="utf-8",
    )
    for name in ("plans.docx", "plans.html"):
        text = "\n\n".join(s.text for s in load_file(tmp_path / name)[0].sections)
        readable = readable_text(text)
        assert "Basic — Price: $0; Support: Email." in readable, name
        assert "Plus — Price: $5 per month; Support: Chat." in readable, name
        assert "|" not in readable, name


def test_list_markers_are_removed_and_items_end_like_sentences():
    text = "Steps:\n1. open **My Orders**\n2) Select the order;\n* Print the label\n+ Done!\n  - nested item"
    assert readable_text(text).split("\n") == [
        "Steps:",
        "Open My Orders.",
        "Select the order.",
        "Print the label.",
        "Done!",
        "Nested item.",
    ]


def test_chinese_list_items():
    text = "注销前请注意：\n\n- 账户中如有**未完成的订单**，需要等其完成后才能注销；\n1、进入“账户设置”\n二、阅读提示"
    assert readable_text(text).split("\n") == [
        "注销前请注意：",
        "",
        "账户中如有未完成的订单，需要等其完成后才能注销。",
        "进入“账户设置”。",
        "阅读提示。",
    ]


def test_word_lists_arrive_as_paragraphs_ending_in_semicolons():
    text = "Common reasons are:\n\nthe card has expired;\n\nthe address does not match;\n\nthe balance is too low."
    assert readable_text(text) == (
        "Common reasons are:\n\nThe card has expired.\n\nThe address does not match.\n\nthe balance is too low."
    )


def test_wrapped_prose_lines_are_left_alone():
    text = "We ship to the US, Canada,\nand mainland China; orders\nleave Reno daily."
    assert readable_text(text) == text


def test_headings_quotes_rules_and_code_fences():
    text = "# Shipping\n\n> **Note:** prices in USD\n\n---\n\n```\nrag ingest data/ | tee log\n```\n### Canada ###"
    assert readable_text(text) == "Shipping\n\nNote: prices in USD\n\nrag ingest data/ | tee log\nCanada"


@pytest.mark.parametrize(
    "markdown, plain",
    [
        ("See [the returns page](https://example.com/returns).", "See the returns page."),
        ('See [help](https://example.com/a_(b) "Help") now', "See help now"),
        ("![a parcel](img/parcel.png) arrives", "a parcel arrives"),
        ("Email <support@example.com> or <https://example.com>", "Email support@example.com or https://example.com"),
        ("See [returns][1].", "See returns."),
        ("Run `rag ingest` and ``a `b` c``", "Run rag ingest and a `b` c"),
        ("**Bold**, __bold__, *italic*, _italic_ and ~~old~~", "Bold, bold, italic, italic and old"),
        ("Keep snake_case_names, 2 * 3 * 4 and a*b*c", "Keep snake_case_names, 2 * 3 * 4 and a*b*c"),
        ("Escaped \\*stars\\* and \\_under\\_", "Escaped *stars* and _under_"),
        ("<script>window.__pwned = 1</script>", "<script>window.__pwned = 1</script>"),
        ("中国站使用**手机号码**注册", "中国站使用手机号码注册"),
    ],
)
def test_inline_markup(markdown, plain):
    assert plain_inline(markdown) == plain


def test_readable_line_alone():
    assert readable_line("## Returns ##") == "Returns"
    assert readable_line("|---|:---:|") == ""
    assert readable_line("| Standard | 3-5 days |") == "Standard: 3-5 days."
    assert readable_line("> - quoted item") == "Quoted item."
    assert readable_line("***") == ""


def test_as_sentence():
    assert as_sentence("eBay orders") == "eBay orders."
    assert as_sentence("Orders from 松岭优选") == "Orders from 松岭优选。"
    assert as_sentence("退款金额为¥88") == "退款金额为¥88。"
    assert as_sentence("Refunds take 5-7 days,") == "Refunds take 5-7 days."
    assert as_sentence("(see below)") == "(see below)."


def test_flat_text_and_cutting():
    assert flat_text("| Method | Cost |\n|---|---|\n| Express | $12.95 |\n\n- 加急\n- 顺丰") == (
        "Express — Cost: $12.95. 加急。顺丰。"
    )
    assert cut_at_word("Delivery takes 3-5 business days", 20) == "Delivery takes 3-5…"
    assert cut_at_word("Supercalifragilisticexpialidocious word", 20) == "Supercalifragilisti…"
    assert cut_at_word("Ends at a word boundary here", 10) == "Ends at a…"
    assert len(cut_at_word("x " * 200, 240)) <= 240


@pytest.mark.parametrize(
    "title, path, trail",
    [
        ("Shipping Policy", ("Shipping Policy", "Canada"), "Canada"),
        ("Shipping Policy", ("Shipping Policy",), ""),
        ("Shipping  Policy", (" shipping policy ", "Shipping Policy", "Canada"), "Canada"),
        ("中国大陆配送说明", ("中国大陆配送说明", "配送范围"), "配送范围"),
        ("FAQ", ("Returns", "FAQ"), "Returns > FAQ"),
        ("Billing Guide", ("Accepted payment methods",), "Accepted payment methods"),
        ("", ("A", "B"), "A > B"),
        ("T", (), ""),
    ],
)
def test_heading_trail_drops_headings_that_repeat_the_title(title, path, trail):
    assert heading_trail(title, path) == trail
