"""Office Open XML packages (.docx, .xlsx: zips of XML parts): checks to run before a parser builds a tree.

python-docx parses a whole part into memory before a loader sees its first paragraph, and a 2 MB upload can
unpack to millions of paragraphs. Streaming over the parts and counting the elements that matter costs
time proportional to the limit, not to the file, and keeps memory flat.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from ingest.limits import FileLimits, check_zip_archive, too_many_elements

WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PIECE = 1024 * 1024


def check_package(path: Path, limits: FileLimits, counted: dict[str, tuple[str, ...]]) -> None:
    """Refuse a zip bomb, then a package holding more than `limits.max_elements` of any group of `counted`
    (what -> element tags, e.g. {"paragraphs and table rows": (W:p, W:tr)}), all parts together.

    Every part is counted whatever its name, since the package's relationships, not its part names, say
    which part is the document; parts that are not XML (images) fail to parse at their first byte. Every part
    is also read to its end, in small pieces: a part whose central-directory size lies then fails its CRC
    check here (a corrupt file), before the parser reads it whole in one piece.
    """
    check_zip_archive(path, limits)
    group_of = {tag: what for what, tags in counted.items() for tag in tags}
    seen = dict.fromkeys(counted, 0)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
        return  # not a zip: the format's loader reports it in its own words
    with archive:
        for info in archive.infolist():
            with archive.open(info) as stream:
                _count_elements(stream, group_of, seen, limits.max_elements)
                for what, count in seen.items():
                    if count > limits.max_elements:
                        raise too_many_elements(path, limits.max_elements, what)
                # read to the end: zipfile checks the CRC only there, so a part whose stated size lies fails here,
                # before the format's parser reads it whole
                while stream.read(_PIECE):
                    continue


def _count_elements(stream: IO[bytes], group_of: dict[str, str], seen: dict[str, int], limit: int) -> None:
    """Add one part's elements to `seen` (by group), stopping once a group is past `limit`; a part that is not
    XML adds nothing."""
    from lxml import etree

    events = etree.iterparse(stream, events=("end",), tag=tuple(group_of), resolve_entities=False, no_network=True)
    try:
        for _, element in events:
            what = group_of[element.tag]
            seen[what] += 1
            if seen[what] > limit:
                return
            element.clear()  # with its earlier siblings: the tree being built stays small
            while element.getprevious() is not None:
                del element.getparent()[0]
    except etree.XMLSyntaxError:
        return  # what was counted stands; the format's own parser then reports the broken part in its words
