"""Minimal numpy-only rasteriser for ``rgb_array`` rendering.

Environments draw their frames (DAGs with vertices, edges, agent dots and small numeric labels;
grids of cells) with these helpers instead of depending on PIL, matplotlib or pygame.

Conventions:

* An image is an ``np.ndarray`` of shape ``(H, W, 3)`` and dtype ``uint8``; every ``draw_*`` /
  ``fill_*`` function paints it **in place** and returns nothing (``draw_text`` returns the text
  size).
* Coordinates are floats in pixels, ``(x, y)`` with ``x`` to the right and ``y`` downward. Pixel
  ``img[i, j]`` has its centre at ``(x, y) = (j, i)``, so the canvas spans
  ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. Shapes paint every pixel whose centre lies inside them.
* Colours are ``(r, g, b)`` sequences of three ints in ``0..255``.
* Anything outside the image is clipped silently; drawing entirely off-canvas is a no-op.
* Work is vectorised over the shape's (clipped) bounding box; there are no per-pixel Python loops.
* Bad arguments raise ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_CANVAS_PIXELS",
    "Color",
    "check_canvas_size",
    "draw_arrow",
    "draw_circle",
    "draw_line",
    "draw_text",
    "fill_circle",
    "fill_rect",
    "new_canvas",
    "text_size",
]

Color = tuple[int, int, int]
"""An ``(r, g, b)`` colour with components in ``0..255``."""

GLYPH_WIDTH = 5
"""Width in pixels of one glyph of the built-in font (before scaling)."""
GLYPH_HEIGHT = 7
"""Height in pixels of one glyph of the built-in font (before scaling)."""
GLYPH_SPACING = 1
"""Blank columns between consecutive glyphs (before scaling)."""

_ANCHORS = ("topleft", "center")

# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------


def _check_img(img: object) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise ValueError(f"img must be a numpy array, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must have shape (H, W, 3), got {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"img must have dtype uint8, got {img.dtype}")
    return img


def _check_color(color: object) -> Color:
    if isinstance(color, np.ndarray):
        color = color.tolist()
    if not isinstance(color, Sequence) or isinstance(color, str) or len(color) != 3:
        raise ValueError(f"color must be a sequence of 3 ints in 0..255, got {color!r}")
    out = []
    for c in color:
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 0 <= c <= 255:
            raise ValueError(f"color must be a sequence of 3 ints in 0..255, got {color!r}")
        out.append(int(c))
    return (out[0], out[1], out[2])


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _check_nonneg(name: str, value: object) -> float:
    v = _check_real(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def _check_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    return int(scale)


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return text


# ----------------------------------------------------------------------------------------------
# Geometry helpers
# ----------------------------------------------------------------------------------------------


def _round(v: float) -> int:
    """Round half up (unlike Python's banker's rounding)."""
    return math.floor(v + 0.5)


def _bbox(
    img: np.ndarray, x_lo: float, x_hi: float, y_lo: float, y_hi: float
) -> tuple[int, int, int, int] | None:
    """Clipped index bounds of the pixels whose centres lie in ``[x_lo, x_hi] x [y_lo, y_hi]``.

    Returns:
        ``(xa, xb, ya, yb)`` such that ``img[ya:yb, xa:xb]`` is the box, or ``None`` if empty.
    """
    h, w = img.shape[:2]
    xa, xb = max(0, math.ceil(x_lo)), min(w, math.floor(x_hi) + 1)
    ya, yb = max(0, math.ceil(y_lo)), min(h, math.floor(y_hi) + 1)
    if xa >= xb or ya >= yb:
        return None
    return xa, xb, ya, yb


def _grid(box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a box: ``xs`` of shape (1, w) and ``ys`` of shape (h, 1)."""
    xa, xb, ya, yb = box
    xs = np.arange(xa, xb, dtype=np.float64)[None, :]
    ys = np.arange(ya, yb, dtype=np.float64)[:, None]
    return xs, ys


def _paint(img: np.ndarray, box: tuple[int, int, int, int], mask: np.ndarray, color: Color) -> None:
    xa, xb, ya, yb = box
    img[ya:yb, xa:xb][mask] = color


def _segment_dist2(xs: np.ndarray, ys: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Squared distance from each pixel centre to the segment (x0, y0)-(x1, y1).

    Args:
        xs: x coordinates, shape (1, w).
        ys: y coordinates, shape (h, 1).
        x0: Segment start x.
        y0: Segment start y.
        x1: Segment end x.
        y1: Segment end y.

    Returns:
        Squared distances, shape (h, w).
    """
    dx, dy = x1 - x0, y1 - y0
    px, py = xs - x0, ys - y0
    len2 = dx * dx + dy * dy
    if len2 == 0.0:
        return px * px + py * py
    t = np.clip((px * dx + py * dy) / len2, 0.0, 1.0)
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey


def _fill_triangle(img: np.ndarray, pts: Sequence[tuple[float, float]], color: Color) -> None:
    """Fill the triangle with vertices ``pts`` (pixel centres on an edge are included)."""
    (ax, ay), (bx, by), (cx, cy) = pts
    area2 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    if area2 == 0.0:
        return
    box = _bbox(img, min(ax, bx, cx), max(ax, bx, cx), min(ay, by, cy), max(ay, by, cy))
    if box is None:
        return
    xs, ys = _grid(box)
    sign = 1.0 if area2 > 0 else -1.0
    eps = 1e-9 * abs(area2)
    mask = np.ones((ys.shape[0], xs.shape[1]), dtype=bool)
    for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)), ((cx, cy), (ax, ay))):
        edge = (qx - px) * (ys - py) - (qy - py) * (xs - px)
        mask &= sign * edge >= -eps
    _paint(img, box, mask, color)


# ----------------------------------------------------------------------------------------------
# Public drawing API
# ----------------------------------------------------------------------------------------------


#: Largest canvas :func:`new_canvas` allocates (16.8 million pixels, 48 MB).
MAX_CANVAS_PIXELS = 1 << 24


def check_canvas_size(height: int, width: int) -> None:
    """Raise ValueError if an (height, width) canvas would exceed :data:`MAX_CANVAS_PIXELS`."""
    if height * width > MAX_CANVAS_PIXELS:
        raise ValueError(
            f"an rgb_array frame of {height:,} x {width:,} = {height * width:,} pixels is over the limit of "
            f"{MAX_CANVAS_PIXELS:,} pixels; render a smaller instance or use render_mode='ansi'"
        )


def new_canvas(height: int, width: int, color: Color = (255, 255, 255)) -> np.ndarray:
    """Create a blank image.

    Args:
        height: Number of rows H, an int >= 1.
        width: Number of columns W, an int >= 1.
        color: Background colour.

    Returns:
        A new ``uint8`` array of shape (H, W, 3) filled with ``color``.

    Raises:
        ValueError: If a dimension is not a positive int, ``color`` is invalid, or the canvas would
            exceed :data:`MAX_CANVAS_PIXELS`.
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    check_canvas_size(int(height), int(width))
    rgb = _check_color(color)
    img = np.empty((int(height), int(width), 3), dtype=np.uint8)
    img[...] = rgb
    return img


def fill_rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
    """Fill an axis-aligned rectangle.

    The corners are rounded (half up) to integers and the rectangle covers columns
    ``round(x0) .. round(x1) - 1`` and rows ``round(y0) .. round(y1) - 1`` (inclusive-exclusive),
    so ``fill_rect(img, 0, 0, W, H, c)`` fills the whole image. Swapped corners are accepted.

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        x0: First corner x.
        y0: First corner y.
        x1: Opposite corner x.
        y1: Opposite corner y.
        color: Fill colour.

    Raises:
        ValueError: On a malformed image, colour or non-finite coordinate.
    """
    _check_img(img)
    rgb = _check_color(color)
    c0, c1 = sorted((_round(_check_real("x0", x0)), _round(_check_real("x1", x1))))
    r0, r1 = sorted((_round(_check_real("y0", y0)), _round(_check_real("y1", y1))))
    h, w = img.shape[:2]
    c0, c1, r0, r1 = max(0, c0), min(w, c1), max(0, r0), min(h, r1)
    if c0 < c1 and r0 < r1:
        img[r0:r1, c0:c1] = rgb


def fill_circle(img: np.ndarray, cx: float, cy: float, radius: float, color: Color) -> None:
    """Fill a disk: every pixel whose centre is within ``radius`` of ``(cx, cy)``.

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        cx: Centre x.
        cy: Centre y.
        radius: Radius in pixels, >= 0.
        color: Fill colour.

    Raises:
        ValueError: On a malformed image or colour, a negative radius or a non-finite number.
    """
    _check_img(img)
    rgb = _check_color(color)
    cx, cy = _check_real("cx", cx), _check_real("cy", cy)
    r = _check_nonneg("radius", radius)
    box = _bbox(img, cx - r, cx + r, cy - r, cy + r)
    if box is None:
        return
    xs, ys = _grid(box)
    _paint(img, box, (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r, rgb)


def draw_circle(
    img: np.ndarray,
    cx: float,
    cy: float,
    radius: float,
    color: Color,
    width: float = 1.0,
) -> None:
    """Draw a ring: pixels whose centre's distance ``d`` to ``(cx, cy)`` has ``|d - radius| <= width / 2``.

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        cx: Centre x.
        cy: Centre y.
        radius: Radius of the ring's mid-line, >= 0.
        color: Stroke colour.
        width: Stroke width in pixels, >= 0.

    Raises:
        ValueError: On a malformed image or colour, a negative radius/width or a non-finite
            number.
    """
    _check_img(img)
    rgb = _check_color(color)
    cx, cy = _check_real("cx", cx), _check_real("cy", cy)
    r = _check_nonneg("radius", radius)
    half = _check_nonneg("width", width) / 2.0
    outer = r + half
    box = _bbox(img, cx - outer, cx + outer, cy - outer, cy + outer)
    if box is None:
        return
    xs, ys = _grid(box)
    d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    _paint(img, box, np.abs(d - r) <= half, rgb)


def draw_line(
    img: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    color: Color,
    width: float = 1.0,
) -> None:
    """Draw a thick segment with round caps.

    Paints every pixel whose centre is within ``width / 2`` of the segment. A horizontal line at
    integer ``y`` with ``width=1`` is one row thick; with ``width=3`` it covers rows
    ``y - 1 .. y + 1``. A zero-length segment paints a disk of diameter ``width``.

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        x0: Start x.
        y0: Start y.
        x1: End x.
        y1: End y.
        color: Stroke colour.
        width: Stroke width in pixels, >= 0.

    Raises:
        ValueError: On a malformed image or colour, a negative width or a non-finite number.
    """
    _check_img(img)
    rgb = _check_color(color)
    x0, y0 = _check_real("x0", x0), _check_real("y0", y0)
    x1, y1 = _check_real("x1", x1), _check_real("y1", y1)
    half = _check_nonneg("width", width) / 2.0
    _line(img, x0, y0, x1, y1, rgb, half)


def _line(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, rgb: Color, half: float) -> None:
    box = _bbox(img, min(x0, x1) - half, max(x0, x1) + half, min(y0, y1) - half, max(y0, y1) + half)
    if box is None:
        return
    xs, ys = _grid(box)
    _paint(img, box, _segment_dist2(xs, ys, x0, y0, x1, y1) <= half * half, rgb)


def draw_arrow(
    img: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    color: Color,
    width: float = 1.0,
    head: float = 6.0,
) -> None:
    """Draw a segment ending in a filled triangular arrow head whose tip is at ``(x1, y1)``.

    The head is ``min(head, length)`` pixels long and as wide at its base as it is long; the shaft
    (see :func:`draw_line`) runs from ``(x0, y0)`` to the base of the head. A zero-length arrow
    draws nothing.

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        x0: Tail x.
        y0: Tail y.
        x1: Tip x.
        y1: Tip y.
        color: Colour of shaft and head.
        width: Shaft width in pixels, >= 0.
        head: Head length in pixels, >= 0 (0 draws a plain line).

    Raises:
        ValueError: On a malformed image or colour, a negative width/head or a non-finite number.
    """
    _check_img(img)
    rgb = _check_color(color)
    x0, y0 = _check_real("x0", x0), _check_real("y0", y0)
    x1, y1 = _check_real("x1", x1), _check_real("y1", y1)
    half = _check_nonneg("width", width) / 2.0
    head_len = _check_nonneg("head", head)
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0.0:
        return
    head_len = min(head_len, length)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ux * head_len, y1 - uy * head_len
    _line(img, x0, y0, bx, by, rgb, half)
    if head_len > 0.0:
        hw = head_len / 2.0
        nx, ny = -uy * hw, ux * hw
        _fill_triangle(img, ((x1, y1), (bx + nx, by + ny), (bx - nx, by - ny)), rgb)


# ----------------------------------------------------------------------------------------------
# Bitmap font
# ----------------------------------------------------------------------------------------------

# Each glyph: 7 rows of 5 columns, top to bottom, '#' = ink.
_GLYPH_ROWS: dict[str, str] = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "[": ".###. .#... .#... .#... .#... .#... .###.",
    "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
    "_": "..... ..... ..... ..... ..... ..... #####",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
_UNKNOWN_ROWS = "..... ##### #...# #...# #...# ##### ....."


def _parse_glyph(rows: str) -> np.ndarray:
    grid = np.array([[ch == "#" for ch in row] for row in rows.split()], dtype=bool)
    if grid.shape != (GLYPH_HEIGHT, GLYPH_WIDTH):  # pragma: no cover - guards the table above
        raise AssertionError(f"bad glyph table entry {rows!r}")
    return grid


_GLYPHS: dict[str, np.ndarray] = {ch: _parse_glyph(rows) for ch, rows in _GLYPH_ROWS.items()}
_UNKNOWN = _parse_glyph(_UNKNOWN_ROWS)
_SPACER = np.zeros((GLYPH_HEIGHT, GLYPH_SPACING), dtype=bool)


def _glyph(ch: str) -> np.ndarray:
    return _GLYPHS.get(ch.upper(), _UNKNOWN) if len(ch.upper()) == 1 else _UNKNOWN


def _text_mask(text: str, scale: int) -> np.ndarray:
    """Ink mask of a single line of text, shape (7 * scale, (6 * len(text) - 1) * scale)."""
    parts: list[np.ndarray] = []
    for i, ch in enumerate(text):
        if i:
            parts.append(_SPACER)
        parts.append(_glyph(ch))
    mask = np.concatenate(parts, axis=1)
    if scale > 1:
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    return mask


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """Size of a single line of text drawn with :func:`draw_text`.

    Each character is a 5x7 glyph and consecutive glyphs are separated by 1 blank column, so
    ``width = scale * (6 * len(text) - 1)`` and ``height = 7 * scale``; the empty string has size
    ``(0, 0)``. Newlines are not interpreted (they draw as the unknown-character box).

    Args:
        text: The string.
        scale: Integer pixel magnification, >= 1.

    Returns:
        ``(width, height)`` in pixels.

    Raises:
        ValueError: If ``text`` is not a str or ``scale`` is not an integer >= 1.
    """
    text = _check_text(text)
    scale = _check_scale(scale)
    if not text:
        return (0, 0)
    n = len(text)
    return (scale * ((GLYPH_WIDTH + GLYPH_SPACING) * n - GLYPH_SPACING), scale * GLYPH_HEIGHT)


def draw_text(
    img: np.ndarray,
    text: str,
    x: float,
    y: float,
    color: Color,
    scale: int = 1,
    anchor: str = "topleft",
) -> tuple[int, int]:
    """Draw one line of text with the built-in 5x7 bitmap font.

    Supported characters: digits ``0-9``, letters ``A-Z`` (lower case is drawn as upper case),
    space and ``. , : - + / = ( ) [ ] _ > < | # * % ! ?``; anything else is drawn as a small box.
    Only ink pixels are painted (the background shows through).

    Args:
        img: Image of shape (H, W, 3), dtype uint8, painted in place.
        text: The string.
        x: Anchor x.
        y: Anchor y.
        color: Ink colour.
        scale: Integer pixel magnification, >= 1.
        anchor: ``"topleft"``: ``(x, y)`` (rounded) is the top-left pixel of the text box;
            ``"center"``: ``(x, y)`` is the centre of the text box.

    Returns:
        ``(width, height)`` of the text box in pixels, as :func:`text_size` (unclipped).

    Raises:
        ValueError: On a malformed image or colour, non-str text, ``scale < 1``, a bad anchor or
            a non-finite coordinate.
    """
    _check_img(img)
    rgb = _check_color(color)
    text = _check_text(text)
    scale = _check_scale(scale)
    x, y = _check_real("x", x), _check_real("y", y)
    if anchor not in _ANCHORS:
        raise ValueError(f"anchor must be one of {_ANCHORS}, got {anchor!r}")
    w, h = text_size(text, scale)
    if not text:
        return (w, h)
    if anchor == "center":
        x -= (w - 1) / 2.0
        y -= (h - 1) / 2.0
    left, top = _round(x), _round(y)
    ih, iw = img.shape[:2]
    xa, xb, ya, yb = max(0, left), min(iw, left + w), max(0, top), min(ih, top + h)
    if xa < xb and ya < yb:
        mask = _text_mask(text, scale)[ya - top : yb - top, xa - left : xb - left]
        img[ya:yb, xa:xb][mask] = rgb
    return (w, h)
