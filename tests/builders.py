"""Real files of every supported type, generated for the tests (nothing is mocked)."""

from __future__ import annotations

import csv
import json
from pathlib import Path


def write_markdown(path: Path, title: str = "Shipping Guide", body: str | None = None) -> Path:
    path.write_text(
        body
        or f"""# {title}

Intro paragraph about how parcels leave the warehouse.

## Standard shipping

Standard shipping takes 3 to 5 business days. It is free on orders over $50.

## Express shipping

Express shipping arrives in 1 to 2 business days and costs $12.95.

### Cut-off times

Orders placed before 2 pm ship the same day.
""",
        encoding="utf-8",
    )
    return path


def write_html(path: Path) -> Path:
    path.write_text(
        """<!doctype html><html lang="en"><head><title>Returns Policy</title>
<link rel="canonical" href="https://help.example.com/returns">
<style>body { color: red }</style><script>var tracking = "do not index me";</script></head>
<body><nav><a href="/">Home</a> | <a href="/help">Help</a></nav>
<h1>Returns Policy</h1>
<p>You can return any item within <b>30 days</b> of delivery.</p>
<h2>Refunds</h2>
<p>Refunds reach your card within 5 to 7 business days.</p>
<ul><li>Keep the original packaging.</li><li>Print the return label.</li></ul>
<footer>Copyright Example Co.</footer></body></html>""",
        encoding="utf-8",
    )
    return path


def write_pdf(path: Path, pages: list[str] | None = None) -> Path:
    from fpdf import FPDF

    pages = pages or [
        "Warranty Policy. Electronics are covered for two years from the date of purchase. "
        "The warranty covers manufacturing defects but not accidental damage.",
        "Making a claim. Email the support team with your order number and a photo of the fault. "
        "We repair or replace the item within ten business days.",
    ]
    pdf = FPDF()
    pdf.set_title("Warranty Policy")
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Account Help"
    document.add_heading("Account Help", level=1)
    document.add_paragraph("This guide explains how to manage your customer account.")
    document.add_heading("Password reset", level=2)
    document.add_paragraph("Click 'Forgot password' on the sign-in page and follow the emailed link within 24 hours.")
    document.add_heading("Deleting your account", level=2)
    document.add_paragraph("Write to privacy support; we delete the account and its data within 30 days.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Plan", "Price"
    table.cell(1, 0).text, table.cell(1, 1).text = "Plus", "$5 per month"
    document.save(str(path))
    return path


def write_csv(
    path: Path, rows: list[tuple[str, str]] | None = None, header: tuple[str, ...] = ("question", "answer")
) -> Path:
    rows = rows or [
        ("How do I track my order?", "Use the tracking link in your shipping confirmation email."),
        ("Can I change my delivery address?", "Yes, until the order ships: edit it under My Orders."),
        ("Do you ship to Canada?", "Yes, international shipping to Canada takes 7 to 10 business days."),
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "FAQ"
    sheet.append(["问题", "答案", "类别"])
    sheet.append(["怎么申请退货？", "在订单页面点击申请退货，30天内均可办理。", "退货"])
    sheet.append(["发票怎么开？", "下单时填写发票抬头，电子发票会发送到您的邮箱。", "账单"])
    workbook.save(str(path))
    return path


def write_jsonl(path: Path, records: list[dict] | None = None) -> Path:
    records = records or [
        {
            "_id": "d1",
            "title": "Gift cards",
            "text": "Gift cards never expire and can be combined with coupons.",
            "metadata": {"lang": "en"},
        },
        {
            "_id": "d2",
            "title": "礼品卡",
            "text": "礼品卡永久有效，可以与优惠券同时使用。",
            "url": "https://help.example.com/gift",
            "metadata": {"lang": "zh"},
        },
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path) -> Path:
    path.write_text(
        json.dumps([{"_id": "c1", "title": "Coupons", "text": "Only one coupon code can be used per order."}]),
        encoding="utf-8",
    )
    return path


def write_txt(
    path: Path,
    text: str = "Our support team answers email within one business day.\n\nPhone support is open 9am to 6pm.",
) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_all_types(folder: Path) -> dict[str, Path]:
    """One valid file of every supported type; returns extension -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        ".md": write_markdown(folder / "shipping.md"),
        ".html": write_html(folder / "returns.html"),
        ".pdf": write_pdf(folder / "warranty.pdf"),
        ".docx": write_docx(folder / "account.docx"),
        ".csv": write_csv(folder / "faq.csv"),
        ".xlsx": write_xlsx(folder / "faq_zh.xlsx"),
        ".jsonl": write_jsonl(folder / "records.jsonl"),
        ".json": write_json(folder / "coupons.json"),
        ".txt": write_txt(folder / "support.txt"),
    }


def product_sentence(product: str, code: str, price: str) -> str:
    """The one sentence a product file states: what `write_product_file` writes and a question can find."""
    return f"The {product} (product code {code}) costs {price} and ships within two business days."


def write_product_file(path: Path, product: str, code: str, price: str, filler: int = 0) -> Path:
    """A file of `path`'s type (any supported extension) about one made-up product: its name, code and price
    (`product_sentence`), plus `filler` paragraphs of unrelated text, so a test can tell which file an answer cites.
    """
    sentence = product_sentence(product, code, price)
    paragraphs = [sentence] + [f"Warehouse note {i}: aisle {i % 40} was swept and restocked." for i in range(filler)]
    suffix = path.suffix.lower()
    if suffix in (".txt", ".text"):
        return write_txt(path, "\n\n".join(paragraphs))
    if suffix in (".md", ".markdown"):
        return write_markdown(path, body=f"# {product}\n\n" + "\n\n".join(paragraphs) + "\n")
    if suffix in (".html", ".htm"):
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        path.write_text(
            f"<!doctype html><html><head><title>{product}</title></head><body><h1>{product}</h1>{body}</body></html>",
            encoding="utf-8",
        )
        return path
    if suffix == ".pdf":
        return write_pdf(path, paragraphs)
    if suffix == ".docx":
        return _write_product_docx(path, product, paragraphs)
    if suffix == ".csv":
        return write_csv(path, [(f"How much does the {product} {code} cost?", p) for p in paragraphs])
    if suffix == ".xlsx":
        return _write_product_xlsx(path, product, code, paragraphs)
    records = [{"_id": f"{code}-{i}", "title": product, "text": p} for i, p in enumerate(paragraphs)]
    if suffix == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
        return path
    if suffix == ".jsonl":
        return write_jsonl(path, records)
    raise ValueError(f"write_product_file: no writer for {suffix!r} - use a supported extension such as .md")


def _write_product_docx(path: Path, product: str, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(product, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))
    return path


def _write_product_xlsx(path: Path, product: str, code: str, paragraphs: list[str]) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["question", "answer"])
    for paragraph in paragraphs:
        sheet.append([f"How much does the {product} {code} cost?", paragraph])
    workbook.save(str(path))
    return path
