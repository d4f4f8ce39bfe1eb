"""The README and the docs render as CommonMark with every section: a fence that carries text on
its closing line, or an unclosed one, swallows the sections after it into one code block.

The oracle is a plain line scanner (a fence opens and closes on lines that start with three
backticks; a heading is a line starting with '#' outside fences; a table row starts with '|'):
what it finds must be exactly what markdown-it-py's CommonMark parser renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it")

ROOT = Path(__file__).resolve().parents[1]
FILES = ["README.md", "CHANGELOG.md", "docs/reproductions.md"]


def scan(text: str) -> tuple[list[str], list[int], list[int]]:
    """Headings (text), fenced blocks (content line counts) and table-row line numbers, by lines."""
    heads, fences, rows = [], [], []
    inside, count = False, 0
    for no, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            if inside:
                fences.append(count)
                inside = False
            else:
                inside, count = True, 0
            continue
        if inside:
            count += 1
        elif re.match(r"#{1,6} ", line):
            heads.append(line.lstrip("#").strip())
        elif line.startswith("|"):
            rows.append(no)
    assert not inside, "a fence is never closed"
    return heads, fences, rows


def render(text: str):
    return markdown_it.MarkdownIt("commonmark").enable("table").parse(text)


@pytest.mark.parametrize("name", FILES)
def test_fences_close_on_a_line_of_their_own(name):
    for no, line in enumerate((ROOT / name).read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            assert re.fullmatch(r"\s*```[\w+-]*", line), f"{name}:{no}: text on a fence line: {line!r}"


@pytest.mark.parametrize("name", FILES)
def test_commonmark_renders_every_section_and_code_block(name):
    text = (ROOT / name).read_text()
    heads, fences, rows = scan(text)
    tokens = render(text)
    rendered_heads = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert rendered_heads == heads, f"{name}: sections swallowed or invented"
    rendered_fences = [len(t.content.splitlines()) for t in tokens if t.type == "fence"]
    assert rendered_fences == fences, f"{name}: a code block runs past its end"
    assert not [t for t in tokens if t.type == "code_block"], f"{name}: an indented block renders as code"
    # every '|' line outside fences is part of a rendered table
    in_tables = set()
    for t in tokens:
        if t.type == "table_open":
            in_tables.update(range(*t.map))
    assert [r for r in rows if r not in in_tables] == [], f"{name}: table rows outside any table"


def test_the_check_sees_a_swallowed_section():
    """The comparison fails on the fault it is there for (a closing fence with text after it)."""
    bad = "# A\n\n```python\nx = 1\n``` more text\n\n## B\n\ntext\n"
    tokens = render(bad)
    rendered = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert rendered == ["A"]  # CommonMark swallows "B" into the code block
    assert scan(bad)[0] == ["A", "B"]  # the line scanner does not: the test above would fail
