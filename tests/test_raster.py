"""Tests for the numpy-only rasteriser ``mpg_envs._raster``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mpg_envs import _raster as R

WHITE = (255, 255, 255)
RED = (255, 0, 0)


def _painted(img: np.ndarray, color=RED) -> np.ndarray:
    """Boolean mask (H, W) of the pixels equal to ``color``."""
    return np.all(img == np.array(color, dtype=np.uint8), axis=-1)


def test_new_canvas():
    img = R.new_canvas(4, 6, (1, 2, 3))
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    assert np.all(img == np.array([1, 2, 3], dtype=np.uint8))
    assert np.all(R.new_canvas(2, 2) == 255)


def test_fill_rect_inclusive_exclusive_and_swapped():
    img = R.new_canvas(10, 10)
    R.fill_rect(img, 2, 3, 5, 7, RED)
    expected = np.zeros((10, 10), dtype=bool)
    expected[3:7, 2:5] = True
    assert np.array_equal(_painted(img), expected)

    img2 = R.new_canvas(10, 10)
    R.fill_rect(img2, 4.6, 6.7, 1.6, 2.5, RED)  # rounds to (5, 7) and (2, 3), swapped
    assert np.array_equal(_painted(img2), expected)


def test_fill_rect_clips():
    img = R.new_canvas(5, 5)
    R.fill_rect(img, -10, -10, 100, 2, RED)
    assert _painted(img)[:2].all() and not _painted(img)[2:].any()


@pytest.mark.parametrize("r", [3.0, 7.5, 12.0])
def test_fill_circle_area_centre_and_background(r):
    img = R.new_canvas(41, 41)  # odd size: the centre (20, 20) is the middle pixel
    R.fill_circle(img, 20, 20, r, RED)
    mask = _painted(img)
    assert abs(mask.sum() - math.pi * r * r) <= 0.1 * math.pi * r * r
    assert mask[20, 20]
    assert not mask[0, 0] and not mask[20, 20 + math.ceil(r) + 1]
    assert np.array_equal(img[0, 0], np.array(WHITE, dtype=np.uint8))
    # symmetric about the centre
    assert np.array_equal(mask, mask[::-1, :]) and np.array_equal(mask, mask[:, ::-1])


def test_fill_circle_partially_outside_is_clipped():
    img = R.new_canvas(20, 20)
    R.fill_circle(img, 0, 0, 5, RED)
    mask = _painted(img)
    assert mask[0, 0] and mask[0, 5] and not mask[0, 6]
    assert not mask[10:, :].any()


def test_draw_circle_is_a_ring():
    img = R.new_canvas(41, 41)
    R.draw_circle(img, 20, 20, 10, RED, width=2)
    mask = _painted(img)
    assert not mask[20, 20]  # hollow
    assert mask[20, 30] and mask[20, 10] and mask[10, 20] and mask[30, 20]
    assert not mask[20, 32] and not mask[20, 18]
    ys, xs = np.nonzero(mask)
    d = np.hypot(xs - 20, ys - 20)
    assert np.all(np.abs(d - 10) <= 1.0)
    # ring area ~ 2 pi r w
    assert abs(mask.sum() - 2 * math.pi * 10 * 2) <= 0.15 * 2 * math.pi * 10 * 2


def test_horizontal_line_width_3_rows():
    img = R.new_canvas(20, 30)
    R.draw_line(img, 5, 10, 25, 10, RED, width=3)
    mask = _painted(img)
    rows = np.nonzero(mask.any(axis=1))[0]
    assert list(rows) == [9, 10, 11]
    assert mask[9:12, 5:26].all()
    # round caps: beyond x=5, only pixels within 1.5 of (5, 10) (e.g. (4, 9) at sqrt(2))
    assert mask[10, 4] and mask[9, 4] and not mask[10, 3] and not mask[9, 3]
    assert not mask[:, :3].any() and not mask[:, 28:].any()


def test_horizontal_line_width_1_is_one_row():
    img = R.new_canvas(10, 10)
    R.draw_line(img, 0, 4, 9, 4, RED)
    mask = _painted(img)
    assert mask[4].all() and mask.sum() == 10


def test_diagonal_line_is_connected_and_near_segment():
    img = R.new_canvas(30, 30)
    R.draw_line(img, 2, 3, 27, 17, RED, width=1)
    mask = _painted(img)
    ys, xs = np.nonzero(mask)
    # every column between the endpoints has ink
    assert set(range(2, 28)) <= set(xs.tolist())
    # all ink lies within width/2 of the infinite line through the endpoints
    dist = np.abs((17 - 3) * (xs - 2) - (27 - 2) * (ys - 3)) / math.hypot(25, 14)
    assert np.all(dist <= 0.5 + 1e-9)


def test_draw_arrow_has_head_and_shaft():
    img = R.new_canvas(21, 40)
    R.draw_arrow(img, 2, 10, 35, 10, RED, width=1, head=8)
    mask = _painted(img)
    assert mask[10, 2:36].all()
    assert not mask[10, 36:].any()
    # head is wider than the shaft near its base, narrow near the tip
    base_col = 35 - 7
    assert mask[:, base_col].sum() >= 5
    assert mask[:, 35].sum() == 1
    assert mask[:, 10].sum() == 1
    # zero-length arrow draws nothing
    img2 = R.new_canvas(10, 10)
    R.draw_arrow(img2, 5, 5, 5, 5, RED)
    assert not _painted(img2).any()


@pytest.mark.parametrize(
    "draw",
    [
        lambda img: R.fill_rect(img, -50, -50, -10, -10, RED),
        lambda img: R.fill_rect(img, 30, 30, 60, 60, RED),
        lambda img: R.fill_circle(img, -30, 5, 4, RED),
        lambda img: R.fill_circle(img, 5, 100, 10, RED),
        lambda img: R.draw_circle(img, 100, 100, 5, RED, width=3),
        lambda img: R.draw_line(img, -20, -5, 40, -5, RED, width=3),
        lambda img: R.draw_line(img, 50, 0, 50, 19, RED),
        lambda img: R.draw_arrow(img, -40, -40, -10, -10, RED),
        lambda img: R.draw_text(img, "HELLO", 100, 100, RED, scale=2),
        lambda img: R.draw_text(img, "123", -200, 5, RED),
    ],
)
def test_drawing_outside_is_noop(draw):
    img = R.new_canvas(20, 20)
    before = img.copy()
    draw(img)
    assert np.array_equal(img, before)


def test_draw_text_ink_counts_and_size():
    img8 = R.new_canvas(20, 20)
    img1 = R.new_canvas(20, 20)
    assert R.draw_text(img8, "8", 2, 2, RED) == (5, 7)
    R.draw_text(img1, "1", 2, 2, RED)
    n8, n1 = _painted(img8).sum(), _painted(img1).sum()
    assert n8 > n1 > 0
    # ink stays inside the 5x7 box at the top-left anchor
    ys, xs = np.nonzero(_painted(img8))
    assert xs.min() >= 2 and xs.max() <= 6 and ys.min() >= 2 and ys.max() <= 8


def test_text_size_formula():
    assert R.text_size("AB", 2) == (2 * (5 + 1 + 5), 2 * 7)
    assert R.text_size("A") == (5, 7)
    assert R.text_size("12345", 3) == (3 * (6 * 5 - 1), 21)
    assert R.text_size("") == (0, 0)


def test_draw_text_scale_multiplies_ink():
    a = R.new_canvas(40, 40)
    b = R.new_canvas(40, 40)
    R.draw_text(a, "7", 1, 1, RED, scale=1)
    R.draw_text(b, "7", 1, 1, RED, scale=3)
    assert _painted(b).sum() == 9 * _painted(a).sum()


def test_draw_text_lowercase_and_unknown():
    up = R.new_canvas(10, 40)
    lo = R.new_canvas(10, 40)
    R.draw_text(up, "ABC", 0, 0, RED)
    R.draw_text(lo, "abc", 0, 0, RED)
    assert np.array_equal(up, lo)
    unk = R.new_canvas(10, 10)
    R.draw_text(unk, "~", 0, 0, RED)
    assert _painted(unk).sum() > 0
    sp = R.new_canvas(10, 10)
    R.draw_text(sp, " ", 0, 0, RED)
    assert _painted(sp).sum() == 0


def test_all_documented_characters_render_distinctly():
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,:-+/=()[]_><|#*%!?"
    masks = []
    for ch in chars:
        img = R.new_canvas(7, 5)
        R.draw_text(img, ch, 0, 0, RED)
        masks.append(_painted(img).tobytes())
    assert all(m != bytes(35) for m in masks)
    assert len(set(masks)) == len(chars)
    unknown = R.new_canvas(7, 5)
    R.draw_text(unknown, "~", 0, 0, RED)
    assert _painted(unknown).tobytes() not in set(masks)


def test_draw_text_center_anchor():
    img = R.new_canvas(21, 31)
    w, h = R.draw_text(img, "888", 15, 10, RED, anchor="center")
    assert (w, h) == (17, 7)
    ys, xs = np.nonzero(_painted(img))
    assert xs.min() == 15 - 8 and xs.max() == 15 + 8
    assert ys.min() == 10 - 3 and ys.max() == 10 + 3


def test_draw_text_partially_clipped():
    img = R.new_canvas(10, 10)
    assert R.draw_text(img, "888", -3, -2, RED) == (17, 7)
    assert _painted(img).any()


@pytest.mark.parametrize(
    "call",
    [
        lambda: R.fill_circle(np.zeros((5, 5), np.uint8), 1, 1, 1, RED),
        lambda: R.fill_circle(np.zeros((5, 5, 4), np.uint8), 1, 1, 1, RED),
        lambda: R.fill_circle(np.zeros((5, 5, 3), np.float32), 1, 1, 1, RED),
        lambda: R.fill_circle([[[0, 0, 0]]], 1, 1, 1, RED),
        lambda: R.fill_rect(R.new_canvas(5, 5), 0, 0, 2, 2, (256, 0, 0)),
        lambda: R.fill_rect(R.new_canvas(5, 5), 0, 0, 2, 2, (-1, 0, 0)),
        lambda: R.fill_rect(R.new_canvas(5, 5), 0, 0, 2, 2, (1, 2)),
        lambda: R.fill_rect(R.new_canvas(5, 5), 0, 0, 2, 2, (1.0, 2, 3)),
        lambda: R.fill_rect(R.new_canvas(5, 5), 0, 0, 2, 2, "red"),
        lambda: R.new_canvas(5, 5, (0, 0, 300)),
        lambda: R.new_canvas(0, 5),
        lambda: R.fill_circle(R.new_canvas(5, 5), 1, 1, -1, RED),
        lambda: R.draw_circle(R.new_canvas(5, 5), 1, 1, -1, RED),
        lambda: R.draw_circle(R.new_canvas(5, 5), 1, 1, 2, RED, width=-1),
        lambda: R.draw_line(R.new_canvas(5, 5), 0, 0, 3, 3, RED, width=-0.5),
        lambda: R.draw_line(R.new_canvas(5, 5), 0, float("nan"), 3, 3, RED),
        lambda: R.draw_arrow(R.new_canvas(5, 5), 0, 0, 3, 3, RED, width=-1),
        lambda: R.draw_arrow(R.new_canvas(5, 5), 0, 0, 3, 3, RED, head=-1),
        lambda: R.draw_text(R.new_canvas(5, 5), "1", 0, 0, RED, scale=0),
        lambda: R.draw_text(R.new_canvas(5, 5), "1", 0, 0, RED, scale=1.5),
        lambda: R.draw_text(R.new_canvas(5, 5), "1", 0, 0, RED, anchor="middle"),
        lambda: R.draw_text(R.new_canvas(5, 5), "1", 0, 0, (0, 0, 999)),
        lambda: R.draw_text(np.zeros((5, 5, 3), np.int64), "1", 0, 0, RED),
        lambda: R.text_size("1", 0),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_numpy_colors_and_ints_accepted():
    img = R.new_canvas(5, 5)
    R.fill_rect(img, 0, 0, 5, 5, np.array([1, 2, 3]))
    R.fill_circle(img, np.int64(2), np.float32(2), 0, (np.uint8(9), 8, 7))
    assert tuple(img[0, 0]) == (1, 2, 3) and tuple(img[2, 2]) == (9, 8, 7)
