"""Gradient field (GrMC key) against hand-computed Sobel responses of an ideal step edge."""

from __future__ import annotations

import numpy as np

from depthcli.gradient_field import gradient_field


def _step_image(low: int, high: int, width: int = 16, height: int = 12, edge_col: int = 8) -> np.ndarray:
    grey = np.full((height, width), low, np.uint8)
    grey[:, edge_col:] = high
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_vertical_step_edge_matches_hand_sobel():
    # Sobel x kernel [[-1,0,1],[-2,0,2],[-1,0,1]]: on a vertical step of height a, the two columns
    # either side of the edge see 1*a + 2*a + 1*a = 4a; every other column sees 0, and Gy = 0.
    field = gradient_field(_step_image(20, 120))
    on_edge = field[:, 7:9]
    assert np.allclose(field[:, :6], 0) and np.allclose(field[:, 10:], 0)
    # Canny keeps (at least) one of the two 4a columns per row; whatever it keeps is the maximum,
    # so after normalisation the kept values are exactly 1.
    kept = on_edge[on_edge > 0]
    assert kept.size >= field.shape[0] - 2
    assert np.allclose(kept, 1.0)


def test_float_not_uint8_overflow():
    # A 200-high square: beside the middle of its left side Gx = 4 * 200 = 800, Gy = 0; at its corner
    # Gx = Gy = 3 * 200, magnitude 600 * sqrt(2). In uint8 both wrap around (800 % 256 = 32); in float
    # the field keeps their true ratio. Canny keeps the outer column beside the side and the corner.
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:12, 4:12] = 200
    field = gradient_field(rgb)
    side, corner = 800.0, 600.0 * np.sqrt(2.0)
    assert field.dtype == np.float32
    assert np.isclose(field[4, 4], 1.0)  # the corner is the strongest kept response
    assert np.isclose(field[8, 3], side / corner, rtol=1e-5)
    assert field[8, 8] == 0  # inside the square: no gradient


def test_flat_image_gives_zeros_not_nan():
    field = gradient_field(np.full((8, 8, 3), 77, np.uint8))
    assert np.all(field == 0)
