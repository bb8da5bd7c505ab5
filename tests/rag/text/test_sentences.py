"""Sentence boundaries on hard cases from our own documents and pysbd's "golden rules", English and Chinese;
pysbd itself runs on the same cases as the baseline to beat."""

from __future__ import annotations

import re
import time

import pytest

from rag.text.sentences import Span, paragraph_spans, sentence_spans

# (text, the sentences it holds)
CASES: list[tuple[str, list[str]]] = [
    # times: a.m./p.m. end a sentence unless a time zone or a day range goes on
    (
        "We open at 9 a.m. Orders placed later ship next day.",
        ["We open at 9 a.m.", "Orders placed later ship next day."],
    ),
    (
        "Call us Monday to Friday, 8:00 a.m. to 8:00 p.m. ET and Saturday from 9 a.m. to 5 p.m. ET.",
        ["Call us Monday to Friday, 8:00 a.m. to 8:00 p.m. ET and Saturday from 9 a.m. to 5 p.m. ET."],
    ),
    (
        "Orders placed before 2:00 p.m. Eastern Time on a business day ship the same day.",
        ["Orders placed before 2:00 p.m. Eastern Time on a business day ship the same day."],
    ),
    ("Chat is open until 6 p.m. PT on weekdays.", ["Chat is open until 6 p.m. PT on weekdays."]),
    ("Phones open at 7 a.m. (CST) every day.", ["Phones open at 7 a.m. (CST) every day."]),
    ("We answer from 9 a.m. Monday to Friday.", ["We answer from 9 a.m. Monday to Friday."]),
    (
        "Open Mon. - Fri. from 9 a.m. to 5 p.m. Closed on holidays.",
        ["Open Mon. - Fri. from 9 a.m. to 5 p.m.", "Closed on holidays."],
    ),
    # company suffixes, Latin and other abbreviations
    ("Pinecrest Supply Co. ships every order from Reno.", ["Pinecrest Supply Co. ships every order from Reno."]),
    (
        "We partner with Acme Inc. and Globex Ltd. for returns.",
        ["We partner with Acme Inc. and Globex Ltd. for returns."],
    ),
    (
        "They closed the deal with Pitt, Briggs & Co. It closed yesterday.",
        ["They closed the deal with Pitt, Briggs & Co.", "It closed yesterday."],
    ),
    ("Bring accessories, e.g. cables and chargers.", ["Bring accessories, e.g. cables and chargers."]),
    ("Some brands, e.g. Apple, ship separately.", ["Some brands, e.g. Apple, ship separately."]),
    (
        "Original packaging, i.e. the box it came in, is required.",
        ["Original packaging, i.e. the box it came in, is required."],
    ),
    ("Tents, stoves, etc. are covered for one year.", ["Tents, stoves, etc. are covered for one year."]),
    ("We accept cards, PayPal, etc. Cash is not accepted.", ["We accept cards, PayPal, etc.", "Cash is not accepted."]),
    ("Compare Standard vs. Express shipping.", ["Compare Standard vs. Express shipping."]),
    ("Mr. Lee and Dr. Chan reviewed the claim.", ["Mr. Lee and Dr. Chan reviewed the claim."]),
    ("Ms. Park and Mrs. Diaz run St. Paul's store.", ["Ms. Park and Mrs. Diaz run St. Paul's store."]),
    ("Use form No. 5 to file a claim.", ["Use form No. 5 to file a claim."]),
    ("Is there a fee? No. Returns are free.", ["Is there a fee?", "No.", "Returns are free."]),
    ("See Fig. 3 and p. 55 of the manual.", ["See Fig. 3 and p. 55 of the manual."]),
    ("It weighs approx. 3.5 kg with the case.", ["It weighs approx. 3.5 kg with the case."]),
    ("Call ext. 204 for billing.", ["Call ext. 204 for billing."]),
    ("I can see Mt. Fuji from here.", ["I can see Mt. Fuji from here."]),
    ("That is JFK Jr.'s book.", ["That is JFK Jr.'s book."]),
    # initials and multi-period abbreviations
    ("We ship to the U.S. and Canada.", ["We ship to the U.S. and Canada."]),
    ("I work for the U.S. Government in Virginia.", ["I work for the U.S. Government in Virginia."]),
    ("We ship within the U.S. How about Canada?", ["We ship within the U.S.", "How about Canada?"]),
    ("I visited the U.S.A. last year.", ["I visited the U.S.A. last year."]),
    ("Contact J. Smith in billing.", ["Contact J. Smith in billing."]),
    ("My name is Jonas E. Smith.", ["My name is Jonas E. Smith."]),
    (
        "We make a good team, you and I. Did you see Albert I. Jones yesterday?",
        ["We make a good team, you and I.", "Did you see Albert I. Jones yesterday?"],
    ),
    # numbers, versions, URLs and e-mail addresses
    ("Gift cards cost $4.99 each. Shipping is free.", ["Gift cards cost $4.99 each.", "Shipping is free."]),
    ("She has $100.00. It is in her bag.", ["She has $100.00.", "It is in her bag."]),
    ("Download version 2.4.1 of the app. It fixes login.", ["Download version 2.4.1 of the app.", "It fixes login."]),
    ("Update to v3.0. Older versions stop working.", ["Update to v3.0.", "Older versions stop working."]),
    ("Orders ship in 1-2 days. 24/7 support is available.", ["Orders ship in 1-2 days.", "24/7 support is available."]),
    (
        "Visit https://www.pinecrestsupply.example/returns.html. Then print the label.",
        ["Visit https://www.pinecrestsupply.example/returns.html.", "Then print the label."],
    ),
    ("Visit www.pinecrestsupply.example/help for details.", ["Visit www.pinecrestsupply.example/help for details."]),
    (
        "Email jane.doe@pinecrestsupply.example. We reply within a day.",
        ["Email jane.doe@pinecrestsupply.example.", "We reply within a day."],
    ),
    ("Prices are in USD. Taxes are extra.", ["Prices are in USD.", "Taxes are extra."]),
    # ellipses, quotes, parentheses, repeated marks
    ("Wait... what happened to my order?", ["Wait... what happened to my order?"]),
    ("I never got it... The box was empty.", ["I never got it...", "The box was empty."]),
    ("I never meant that.... She left the store.", ["I never meant that....", "She left the store."]),
    ("The tracking page says . . . nothing at all.", ["The tracking page says . . . nothing at all."]),
    ("It said “delivered”… it was not.", ["It said “delivered”… it was not."]),
    ("Where is my order?! It is late.", ["Where is my order?!", "It is late."]),
    ("Hello!! Long time no see.", ["Hello!!", "Long time no see."]),
    ('She said, "It arrived broken." she wanted a refund.', ['She said, "It arrived broken." she wanted a refund.']),
    ('She said, "It arrived broken." She wanted a refund.', ['She said, "It arrived broken."', "She wanted a refund."]),
    ("The label (printed at the counter.) is free.", ["The label (printed at the counter.) is free."]),
    ("She works at Yahoo! in the accounting department.", ["She works at Yahoo! in the accounting department."]),
    ("This is **important.** Read it twice.", ["This is **important.**", "Read it twice."]),
    # line breaks: list items and table rows
    ("1. Open My Orders.\n2. Select the order", ["1. Open My Orders.", "2. Select the order"]),
    ("- Standard: 3-5 days\n- Express: 1-2 days", ["- Standard: 3-5 days", "- Express: 1-2 days"]),
    (
        "1. **Return it.** Accept the delivery.\n2. **Refuse it.**",
        ["1. **Return it.**", "Accept the delivery.", "2. **Refuse it.**"],
    ),
    (
        "| Method | Cost |\n|---|---|\n| Standard | $5.95 |",
        ["| Method | Cost |", "|---|---|", "| Standard | $5.95 |"],
    ),
    ("a. Pack the item\nb. Print the label", ["a. Pack the item", "b. Print the label"]),
    (
        "- rental use, such as gear rented out; - water damage; - loss or theft.",
        ["- rental use, such as gear rented out;", "- water damage;", "- loss or theft."],
    ),
    ("It is fine; taking it on a trip is not.", ["It is fine; taking it on a trip is not."]),
    # Chinese, and Chinese mixed with English
    ("我们的营业时间是9:00至21:00。周末休息。", ["我们的营业时间是9:00至21:00。", "周末休息。"]),
    ("这顶帐篷重约3.5公斤。", ["这顶帐篷重约3.5公斤。"]),
    ("包裹已发出！请注意查收？谢谢", ["包裹已发出！", "请注意查收？", "谢谢"]),
    ("他说：“我收到了。”然后离开了。", ["他说：“我收到了。”", "然后离开了。"]),
    ("「好的。」他说。", ["「好的。」", "他说。"]),
    ("运费为¥88；订单满¥399免运费。", ["运费为¥88；", "订单满¥399免运费。"]),
    ("Pinecrest Supply Co. 中国站的订单从美国发出。", ["Pinecrest Supply Co. 中国站的订单从美国发出。"]),
    (
        "松岭优选（Pinecrest Supply Co. 中国站）的所有订单均从仓库发出。",
        ["松岭优选（Pinecrest Supply Co. 中国站）的所有订单均从仓库发出。"],
    ),
    (
        "请发送邮件至 cn-support@pinecrestsupply.example。我们会在1个工作日内回复。",
        ["请发送邮件至 cn-support@pinecrestsupply.example。", "我们会在1个工作日内回复。"],
    ),
    ("Thanks for your order. 感谢您的订购！", ["Thanks for your order.", "感谢您的订购！"]),
    ("好的!我们马上处理.", ["好的!", "我们马上处理."]),
    ("版本 v2.1.3 已发布。请访问 www.example.com 下载。", ["版本 v2.1.3 已发布。", "请访问 www.example.com 下载。"]),
    ("《退货政策》第3.2条规定：7天内可退货。", ["《退货政策》第3.2条规定：7天内可退货。"]),
    ("（详见第5条。）接下来是运费说明。", ["（详见第5条。）", "接下来是运费说明。"]),
    ("价格：$4.99。运费另计。", ["价格：$4.99。", "运费另计。"]),
    ("例如帐篷、睡袋等……都在保修范围内。", ["例如帐篷、睡袋等……都在保修范围内。"]),
    ("请在“账户设置 > 通知”中关闭营销短信。", ["请在“账户设置 > 通知”中关闭营销短信。"]),
    (
        "在线客服每天9:00至21:00（北京时间）。邮件24小时内回复。",
        ["在线客服每天9:00至21:00（北京时间）。", "邮件24小时内回复。"],
    ),
    ("1. 点击“登录/注册”；\n2. 输入验证码。", ["1. 点击“登录/注册”；", "2. 输入验证码。"]),
    (
        "电话：1-800-555-0142。Email: support@pinecrestsupply.example.",
        ["电话：1-800-555-0142。", "Email: support@pinecrestsupply.example."],
    ),
]


def ours(text: str) -> list[str]:
    return [text[s.start : s.end] for s in sentence_spans(text)]


@pytest.mark.unit
@pytest.mark.parametrize("text, expected", CASES, ids=[t[:40] for t, _ in CASES])
def test_hard_cases(text, expected):
    assert ours(text) == expected


@pytest.mark.unit
def test_there_are_enough_hard_cases_in_both_languages():
    chinese = [t for t, _ in CASES if re.search(r"[\u4e00-\u9fff]", t)]
    assert len(CASES) >= 40 and len(chinese) >= 10


def pysbd_sentences(text: str) -> list[str]:
    """pysbd on each line (it has no notion of line breaks ending list items), Chinese rules for Chinese text."""
    import pysbd

    language = "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"
    segmenter = pysbd.Segmenter(language=language, clean=False)
    return [s.strip() for line in text.split("\n") for s in segmenter.segment(line) if s.strip()]


@pytest.mark.unit
def test_at_least_as_many_hard_cases_right_as_pysbd():
    pytest.importorskip("pysbd")
    right_ours = sum(ours(text) == expected for text, expected in CASES)
    right_pysbd = sum(pysbd_sentences(text) == expected for text, expected in CASES)
    assert right_ours >= right_pysbd, f"ours {right_ours}/{len(CASES)}, pysbd {right_pysbd}/{len(CASES)}"


@pytest.mark.unit
def test_spans_stay_inside_the_window_and_cover_its_text():
    text = "Intro. We open at 9 a.m. Orders ship today.\n\nNext paragraph. 第二段。"
    para = paragraph_spans(text)[0]
    spans = sentence_spans(text, para)
    assert all(para.start <= s.start < s.end <= para.end for s in spans)
    assert " ".join(text[s.start : s.end] for s in spans) == text[para.start : para.end]


@pytest.mark.unit
def test_a_window_starting_mid_line_treats_its_start_as_a_line_start():
    text = "see 1. First step. Then more."
    assert sentence_spans(text, Span(4, len(text))) == [Span(4, 18), Span(19, len(text))]


@pytest.mark.unit
def test_fast_enough_for_ingest():
    text = " ".join(text for text, _ in CASES) * 20  # ~ 65 kB, dense with hard cases

    def best_of_three(sample: str) -> float:
        # CPU time, best of three: a busy machine's stalls are not the splitter's cost
        times = []
        for _ in range(3):
            started = time.process_time()
            sentence_spans(sample)
            times.append(time.process_time() - started)
        return min(times)

    once, four_times = best_of_three(text), best_of_three(text * 4)
    assert once < 1.0
    assert four_times < 8 * max(once, 0.005)  # linear in the text, not quadratic (which is 16x)
