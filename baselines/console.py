"""Plain-text tables that fit the terminal (the end of ``train``, ``dcpg``, ``sb3``, ``reproduce``
and the benchmark scripts).

Columns keep their natural width while the table fits; otherwise the widest columns are narrowed
to share what is left and their cells wrap inside the column (``textwrap``), so that no line is
longer than the terminal (``shutil.get_terminal_size``: ``COLUMNS``, the terminal, or 100 columns
when the output is not a terminal). Rows of a wrapped table are separated by a blank line.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

__all__ = ["terminal_width", "format_table", "print_table", "wrap_text", "FALLBACK_WIDTH", "MIN_COLUMN"]

#: Width when the output is not a terminal and ``COLUMNS`` is unset.
FALLBACK_WIDTH = 100
#: The narrowest a column is made, unless its title has a longer word (a table with many columns
#: may then exceed a very narrow width).
MIN_COLUMN = 6
#: Words up to this length (numbers, ordinary words) are not broken while columns can be narrowed.
MAX_WORD = 12
_GAP = "  "


def terminal_width() -> int:
    """The terminal's width in characters (``COLUMNS``, the terminal, else :data:`FALLBACK_WIDTH`)."""
    return max(shutil.get_terminal_size(fallback=(FALLBACK_WIDTH, 24)).columns, 20)


def _column_widths(
    natural: list[int], available: int, minimum: list[int], keep: Sequence[int] = ()
) -> list[int]:
    """Widths summing to at most ``available`` when the ``minimum`` widths allow it: the ``keep``
    columns keep their natural width while the others can still have their minimum; of the others,
    those narrower than an equal share keep theirs and the rest share what is left in proportion
    to theirs (never below their minimum)."""
    if sum(natural) <= available:
        return list(natural)
    widths = [0] * len(natural)
    left = list(range(len(natural)))
    room = available
    kept = [k for k in keep if 0 <= k < len(natural)]
    others = sum(minimum[k] for k in left if k not in kept)
    if kept and sum(natural[k] for k in kept) + others <= available:
        for k in kept:
            widths[k] = natural[k]
            room -= natural[k]
            left.remove(k)
    while left:
        share = room // len(left)
        small = [k for k in left if natural[k] <= share]
        if not small:  # the wide columns share the rest in proportion to their natural widths
            while left:  # ... where that is not below their minimum
                total = sum(natural[k] for k in left)
                under = [k for k in left if room * natural[k] < minimum[k] * total]
                if not under:
                    break
                for k in under:
                    widths[k] = minimum[k]
                    room -= minimum[k]
                    left.remove(k)
            total = sum(natural[k] for k in left)
            for k in left:
                widths[k] = max(room, 0) * natural[k] // total
            spare = room - sum(widths[k] for k in left)
            for k in sorted(left, key=lambda k: -natural[k])[: max(spare, 0)]:
                widths[k] += 1
            break
        for k in small:
            widths[k] = natural[k]
            room -= natural[k]
            left.remove(k)
    return widths


def _short_words(texts) -> list[int]:
    """Lengths of the words of ``texts`` up to :data:`MAX_WORD` characters."""
    return [len(w) for t in texts for w in t.split() if len(w) <= MAX_WORD]


def _longest_line(text: str) -> int:
    return max((len(ln) for ln in text.splitlines()), default=0)


_MARK = "\x00"


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width``; a word longer than that (a run folder's name) breaks after a
    ``__`` separator where it can, else anywhere."""
    lines: list[str] = []
    for part in text.splitlines() or [""]:
        if max(map(len, part.split()), default=0) > width:
            part = part.replace("__", "__" + _MARK + " ")  # break opportunities inside long names
        wrapped = textwrap.wrap(part, width, break_on_hyphens=False) or [""]
        lines += [ln.replace(_MARK + " ", "").replace(_MARK, "") for ln in wrapped]
    return lines


def wrap_text(text: str, width: int | None = None, indent: str = "") -> str:
    """``text`` wrapped to ``width`` (default: the terminal's), continuation lines indented."""
    width = terminal_width() if width is None else width
    return "\n".join(
        textwrap.fill(p, width, subsequent_indent=indent, break_on_hyphens=False) if p else ""
        for p in text.splitlines()
    )


def format_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    width: int | None = None,
    align: Sequence[str] | None = None,
    keep: Sequence[int] = (),
) -> list[str]:
    """The lines of a plain-text table: a header, a rule, one or more lines per row.

    Args:
        columns: Column titles.
        rows: Cells (any objects; ``str()`` of each); every row has ``len(columns)`` cells.
        width: Largest line length (default: :func:`terminal_width`).
        align: ``"<"`` (left) or ``">"`` (right) per column (default: all left).
        keep: Columns not to wrap while the others can be narrowed instead (e.g. a run folder's
            name, which a reader copies).

    Returns:
        The lines, none longer than ``width`` unless the columns cannot be narrowed further
        (:data:`MIN_COLUMN` each).

    Raises:
        ValueError: A row with another number of cells, or a bad ``align``.
    """
    width = terminal_width() if width is None else int(width)
    n = len(columns)
    align = list(align) if align is not None else ["<"] * n
    if len(align) != n or any(a not in ("<", ">") for a in align):
        raise ValueError(f"align must give '<' or '>' for each of the {n} columns, got {align!r}")
    cells = [[str(c) for c in columns]]
    for r in rows:
        if len(r) != n:
            raise ValueError(f"every row needs {n} cells ({list(columns)}), got {len(r)}: {list(r)!r}")
        cells.append([str(c) for c in r])
    natural = [max(_longest_line(row[k]) for row in cells) for k in range(n)]
    # a column is not made narrower than MIN_COLUMN, its title's longest word, or its longest short
    # word (numbers, "iteration"): only long words (names, paths) break
    minimum = [
        min(natural[k], max([MIN_COLUMN, *map(len, cells[0][k].split()), *_short_words(r[k] for r in cells)]))
        for k in range(n)
    ]
    widths = _column_widths(natural, width - len(_GAP) * (n - 1), minimum, keep)
    wrapped = [[_wrap(c, w) for c, w in zip(row, widths)] for row in cells]
    spaced = any(max(len(c) for c in row) > 1 for row in wrapped[1:])
    lines: list[str] = []
    for j, row in enumerate(wrapped):
        if j > 1 and spaced:
            lines.append("")
        for k in range(max(len(c) for c in row)):
            parts = [
                (c[k] if k < len(c) else "").ljust(w) if a == "<" else (c[k] if k < len(c) else "").rjust(w)
                for c, w, a in zip(row, widths, align)
            ]
            lines.append(_GAP.join(parts).rstrip())
        if j == 0:
            lines.append(_GAP.join("-" * w for w in widths))
    return lines


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    file: TextIO | None = None,
    width: int | None = None,
    align: Sequence[str] | None = None,
    keep: Sequence[int] = (),
) -> None:
    """Print ``title`` (wrapped, after a blank line) and :func:`format_table`'s lines."""
    file = file or sys.stdout
    width = terminal_width() if width is None else int(width)
    if title:
        print("\n" + wrap_text(title, width), file=file)
    for line in format_table(columns, rows, width, align, keep):
        print(line, file=file)
