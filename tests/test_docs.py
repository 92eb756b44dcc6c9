"""The documentation holds together: links resolve, the README stays short, timings.md's sections are sound.

Plain text checks (no torch), fast.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 160

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
MARKER = re.compile(r"^<!-- (benchmarks/\S+\.py)(?: .*)? -->$", re.MULTILINE)
END = "<!-- end -->"


def prose(text: str) -> str:
    """The text without fenced code blocks, and with code spans blanked (links in them are not links)."""
    return CODE_SPAN.sub("code", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page, with GitHub's -1, -2 ... for repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text())) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_pages_have_links_to_check():
    """The link check reads links at all (a broken pattern would pass every page)."""
    assert "docs/design.md" in relative_links(REPO / "README.md")
    assert "design.md#online-mode-implemented" in relative_links(REPO / "docs" / "robustness.md")


def test_anchor_slugs_follow_github():
    assert slug("Prepared data (`results/data/{dataset}/`)") == "prepared-data-resultsdatadataset"
    assert slug("Where the paper and the authors' release disagree") == (
        "where-the-paper-and-the-authors-release-disagree"
    )


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move reference material to docs/"


def test_timings_sections_name_existing_scripts_and_end():
    text = (REPO / "docs" / "timings.md").read_text()
    starts = list(MARKER.finditer(text))
    assert starts, "docs/timings.md has no benchmark sections"
    for start, after in zip(starts, [*starts[1:], None]):
        assert (REPO / start.group(1)).is_file(), f"{start.group(0)}: no such script"
        section = text[start.end() : after.start() if after else len(text)]
        assert section.count(END) == 1, f"{start.group(0)}: needs exactly one {END} before the next section"


def timings_doc():
    spec = importlib.util.spec_from_file_location("timings_doc", REPO / "benchmarks" / "timings_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_docs_replaces_only_its_own_section():
    doc = timings_doc()
    page = "intro\n<!-- benchmarks/a.py -->\nold a\n<!-- end -->\n<!-- benchmarks/a.py --x 1 -->\nold x\n<!-- end -->\n"
    replaced = doc.replace_section(page, "benchmarks/a.py", "new a\n")
    assert replaced == page.replace("old a", "new a")
    appended = doc.replace_section(page, "benchmarks/b.py", "new b")
    assert appended == page + "\n<!-- benchmarks/b.py -->\nnew b\n<!-- end -->\n"


def test_write_docs_names_the_command_without_the_option():
    doc = timings_doc()
    argv = [str(REPO / "benchmarks" / "robustness.py"), "--threads", "1", "--write-docs"]
    assert doc.command(argv) == "benchmarks/robustness.py --threads 1"
