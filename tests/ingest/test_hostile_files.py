"""Hostile uploads: files built to cost minutes or gigabytes are refused fast, with the limit to raise.

The files are generated here: zip bombs written member by member so that writing them stays cheap, and
workbooks or documents with more elements than a small `max_elements`. The sandbox tests inject a loader
from this module (the worker process imports it) that sleeps, hoards memory or gets killed on demand.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest

from ingest.errors import FileTooLarge, LoaderError, LoadOutOfMemory, LoadTimeout
from ingest.limits import FileLimits, check_zip_archive
from ingest.loaders import load_file
from ingest.sandbox import SandboxedLoader
from rag.core.settings import Settings
from tests import builders

unit = pytest.mark.unit
integration = pytest.mark.integration

MIB = 1024 * 1024
PARAGRAPH = b'<w:p><w:pPr><w:pStyle w:val="Normal"/></w:pPr><w:r><w:t>Refunds take five days.</w:t></w:r></w:p>'


# ---- building hostile files ----------------------------------------------------------------------------
def write_docx_with_body(path: Path, paragraph: bytes, repeats: int) -> Path:
    """A .docx from python-docx's own template whose body is `paragraph` `repeats` times, streamed into the zip."""
    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != "word/document.xml":
                target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            body_at = data.index(b"<w:body>") + len(b"<w:body>")
            with target.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(data[:body_at])
                block = paragraph * 10_000
                for _ in range(repeats // 10_000):
                    member.write(block)
                member.write(paragraph * (repeats % 10_000))
                member.write(data[data.index(b"<w:sectPr", body_at) :])
    return path


def write_faq_xlsx(path: Path, rows: int) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["question", "answer", "category"])
    for i in range(rows):
        sheet.append([f"Question {i}?", f"Answer {i}.", "billing"])
    workbook.save(str(path))
    return path


def rewrite_member(path: Path, name: str, change) -> None:
    """Replace one member of a zip by `change(its bytes)`."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            target.writestr(info, change(data) if info.filename == name else data, compress_type=zipfile.ZIP_DEFLATED)


def declare_size(path: Path, name: str, size: int) -> None:
    """Make the zip's central directory claim that member `name` unpacks to `size` bytes (a lying header)."""
    data = bytearray(path.read_bytes())
    for match in re.finditer(b"PK\x01\x02", data):
        at = match.start()
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length] == name.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"{name} is not in {path}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.fixture(scope="module")
def docx_bomb(tmp_path_factory) -> Path:
    """250 MB of paragraphs in word/document.xml, about 1 MB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.docx"
    return write_docx_with_body(path, PARAGRAPH, 250 * MIB // len(PARAGRAPH))


# ---- zip bombs: refused from the central directory ------------------------------------------------------
@unit
def test_docx_bomb_is_refused_fast_without_unpacking(docx_bomb):
    assert docx_bomb.stat().st_size < 3 * MIB
    peak_before = peak_rss_mib()
    started = time.perf_counter()
    with pytest.raises(FileTooLarge) as info:
        load_file(docx_bomb)
    assert time.perf_counter() - started < 3
    assert peak_rss_mib() - peak_before < 50
    assert info.value.path == str(docx_bomb)
    assert "RAG_INGEST_MAX_UNPACKED_BYTES" in info.value.reason and "unpacks to 262," in info.value.reason


@unit
def test_member_compressed_far_beyond_real_documents_is_refused(tmp_path):
    path = write_docx_with_body(tmp_path / "dense.docx", PARAGRAPH, 20 * MIB // len(PARAGRAPH))  # under 200 MiB
    with pytest.raises(FileTooLarge, match=r"part 'word/document.xml' unpacks \d+ times its size .* zip bomb"):
        check_zip_archive(path, FileLimits())


@unit
def test_zip_with_too_many_members_is_refused(tmp_path):
    path = builders.write_docx(tmp_path / "many.docx")
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(30):
            archive.writestr(f"word/media/image{i}.png", b"x")
    with pytest.raises(FileTooLarge, match="its zip holds 4[0-9] files, more than the 20"):
        load_file(path, limits=FileLimits(max_zip_members=20))
    assert load_file(path) == load_file(builders.write_docx(tmp_path / "plain.docx"), str(path))


@unit
def test_member_lying_about_its_size_unpacks_no_more_than_it_declares(tmp_path):
    path = write_docx_with_body(tmp_path / "liar.docx", PARAGRAPH, 100 * MIB // len(PARAGRAPH))
    declare_size(path, "word/document.xml", 4096)
    peak_before = peak_rss_mib()
    started = time.perf_counter()
    with pytest.raises(LoaderError, match="corrupt or unreadable .docx file: BadZipFile: Bad CRC-32"):
        load_file(path)
    assert time.perf_counter() - started < 3
    assert peak_rss_mib() - peak_before < 50


@unit
def test_a_file_that_is_no_zip_is_left_to_its_loader(tmp_path):
    path = tmp_path / "fake.docx"
    path.write_bytes(b"PK\x03\x04 not a zip")
    check_zip_archive(path, FileLimits())  # no error of its own: the loader says it is corrupt
    with pytest.raises(LoaderError, match="corrupt or unreadable .docx"):
        load_file(path)


# ---- element caps ---------------------------------------------------------------------------------------
def assert_too_many(path: Path, limit: int, what: str) -> None:
    with pytest.raises(FileTooLarge) as info:
        load_file(path, limits=FileLimits(max_elements=limit))
    assert info.value.path == str(path)
    assert info.value.reason == (
        f"holds more than {limit:,} {what} (RAG_INGEST_MAX_ELEMENTS={limit}) - split the file or raise "
        "RAG_INGEST_MAX_ELEMENTS"
    )


@unit
def test_docx_with_more_paragraphs_than_the_limit_is_refused(tmp_path):
    path = write_docx_with_body(tmp_path / "long.docx", PARAGRAPH, 60)
    assert_too_many(path, 50, "paragraphs and table rows")
    [document] = load_file(path, limits=FileLimits(max_elements=60))
    assert document.sections[0].text.count("Refunds take five days.") == 60


@unit
def test_xlsx_with_more_rows_than_the_limit_is_refused(tmp_path):
    path = write_faq_xlsx(tmp_path / "faq.xlsx", 60)
    assert_too_many(path, 50, "rows")
    [document] = load_file(path, limits=FileLimits(max_elements=300))
    assert len(document.sections) == 60


@unit
def test_xlsx_declaring_16384_columns_costs_cells_not_rows(tmp_path):
    """openpyxl pads each row to the width the sheet declares: a few bytes make every row 16,384 cells."""
    path = write_faq_xlsx(tmp_path / "wide.xlsx", 20)
    expected = load_file(path)
    rewrite_member(
        path,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD21"', xml),
    )
    assert load_file(path) == expected  # the padding right of the last named column is never read
    assert_too_many(path, 10_000, "cells")


@unit
def test_csv_with_more_rows_than_the_limit_is_refused(tmp_path):
    path = builders.write_csv(tmp_path / "faq.csv", [(f"Question {i}?", f"Answer {i}.") for i in range(60)])
    assert_too_many(path, 50, "rows")
    [document] = load_file(path, limits=FileLimits(max_elements=60))
    assert len(document.sections) == 60


@unit
def test_jsonl_with_more_records_than_the_limit_is_refused(tmp_path):
    path = builders.write_jsonl(tmp_path / "corpus.jsonl", [{"_id": str(i), "text": f"Fact {i}."} for i in range(60)])
    assert_too_many(path, 50, "lines")
    assert len(load_file(path, limits=FileLimits(max_elements=60))) == 60


@unit
def test_json_html_markdown_and_pdf_are_capped_too(tmp_path):
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"_id": str(i), "text": f"Fact {i}."} for i in range(60)]), encoding="utf-8")
    assert_too_many(records, 50, "records")
    page = tmp_path / "page.html"
    page.write_text("<html><body>" + "<p>Refunds take five days.</p>" * 60 + "</body></html>", encoding="utf-8")
    assert_too_many(page, 50, "elements")
    notes = builders.write_markdown(tmp_path / "notes.md", body="\n".join(f"Line {i}." for i in range(60)))
    assert_too_many(notes, 50, "lines")
    assert_too_many(builders.write_pdf(tmp_path / "w.pdf"), 1, "pages")


@unit
def test_every_normal_file_loads_the_same_under_small_limits(tmp_path):
    for path in builders.write_all_types(tmp_path).values():
        assert load_file(path, limits=FileLimits(max_elements=100, max_unpacked_bytes=MIB)) == load_file(path)


@unit
def test_limits_come_from_the_settings_and_must_be_positive():
    settings = Settings(
        _env_file=None,
        ingest_file_timeout=5.0,
        ingest_file_memory_mb=512,
        ingest_max_unpacked_bytes=MIB,
        ingest_max_elements=10,
    )
    assert FileLimits.from_settings(settings) == FileLimits(
        max_unpacked_bytes=MIB, max_elements=10, timeout_s=5.0, memory_mb=512
    )
    assert FileLimits.from_settings(Settings(_env_file=None)) == FileLimits()
    with pytest.raises(ValueError, match="max_elements must be greater than 0"):
        FileLimits(max_elements=0)


# ---- the sandbox: time and memory -----------------------------------------------------------------------
def hostile_loader(path: Path, source: str, limits: FileLimits):
    """Injected into the sandbox's worker: misbehaves as the file's name says, else loads it for real."""
    if path.name.startswith("sleep"):
        time.sleep(60)
    if path.name.startswith("hog"):
        hoard = [bytes(MIB) for _ in range(100 * limits.memory_mb)]  # each one touched, as a parser's would be
        return hoard
    if path.name.startswith("die"):
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does
    return load_file(path, source, limits)


@pytest.fixture
def normal_files(tmp_path) -> dict[str, Path]:
    return builders.write_all_types(tmp_path / "normal")


@integration
def test_sandbox_loads_like_load_file_and_passes_loader_errors_back(tmp_path, normal_files):
    corrupt = tmp_path / "corrupt.docx"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    with SandboxedLoader(FileLimits()) as sandbox:
        for path in normal_files.values():
            assert sandbox.load(path, path.name) == load_file(path, path.name)
        with pytest.raises(LoaderError) as in_process:
            load_file(corrupt, "corrupt.docx")
        with pytest.raises(LoaderError) as sandboxed:
            sandbox.load(corrupt, "corrupt.docx")
        assert type(sandboxed.value) is type(in_process.value)
        assert (sandboxed.value.path, sandboxed.value.reason) == (in_process.value.path, in_process.value.reason)


@integration
def test_sandbox_refuses_the_docx_bomb_within_a_small_memory_cap(docx_bomb):
    with SandboxedLoader(FileLimits(memory_mb=64)) as sandbox:
        sandbox.load(builders.write_txt(docx_bomb.with_name("warm.txt")), "warm.txt")  # worker started
        started = time.perf_counter()
        with pytest.raises(FileTooLarge, match="RAG_INGEST_MAX_UNPACKED_BYTES"):
            sandbox.load(docx_bomb, "bomb.docx")
        assert time.perf_counter() - started < 3


@integration
def test_sandbox_kills_a_slow_load_and_the_next_file_still_loads(tmp_path, normal_files):
    slow = builders.write_txt(tmp_path / "sleep.txt")
    with SandboxedLoader(FileLimits(timeout_s=1.0), loader=hostile_loader) as sandbox:
        sandbox.load(normal_files[".md"], "shipping.md")  # the worker is up: what follows times the file only
        started = time.perf_counter()
        with pytest.raises(LoadTimeout) as info:
            sandbox.load(slow, "sleep.txt")
        assert time.perf_counter() - started < 3
        assert info.value.path == str(slow)
        assert (
            info.value.reason
            == "took longer than 1 s to load (RAG_INGEST_FILE_TIMEOUT=1) - split the file or raise the limit"
        )
        assert sandbox.load(normal_files[".csv"], "faq.csv") == load_file(normal_files[".csv"], "faq.csv")


@integration
def test_sandbox_stops_a_memory_hog_and_a_killed_worker(tmp_path, normal_files):
    hog = builders.write_txt(tmp_path / "hog.txt")
    doomed = builders.write_txt(tmp_path / "die.txt")
    with SandboxedLoader(FileLimits(memory_mb=128), loader=hostile_loader) as sandbox:
        with pytest.raises(LoadOutOfMemory) as hungry:
            sandbox.load(hog, "hog.txt")
        assert "needed more than 128 MiB of memory to load (RAG_INGEST_FILE_MEMORY_MB=128)" in hungry.value.reason
        assert sandbox.load(normal_files[".docx"], "a.docx") == load_file(normal_files[".docx"], "a.docx")
        with pytest.raises(LoadOutOfMemory) as killed:
            sandbox.load(doomed, "die.txt")
        assert "killed (SIGKILL)" in killed.value.reason and "RAG_INGEST_FILE_MEMORY_MB=128" in killed.value.reason
        assert sandbox.load(normal_files[".xlsx"], "faq.xlsx") == load_file(normal_files[".xlsx"], "faq.xlsx")


@integration
def test_sandbox_is_shared_safely_between_threads(normal_files):
    paths = list(normal_files.values()) * 3
    results: dict[int, object] = {}
    with SandboxedLoader(FileLimits()) as sandbox:

        def load(i: int) -> None:
            results[i] = sandbox.load(paths[i], paths[i].name)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(len(paths))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [results[i] for i in range(len(paths))] == [load_file(p, p.name) for p in paths]
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.load(paths[0], paths[0].name)
