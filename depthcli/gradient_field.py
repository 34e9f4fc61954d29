"""GrMC's gradient field: the contrastive key that makes an encoder attend to geometry, not colour.

Grey image -> float Sobel magnitude -> kept only on Canny edges (thresholds 50/200) -> divided by its
maximum. The reference implementation computes the magnitude in uint8 and silently wraps around on
strong edges; everything here stays in float32.
"""

from __future__ import annotations

import cv2
import numpy as np

CANNY_LOW = 50
CANNY_HIGH = 200


def gradient_field(rgb: np.ndarray) -> np.ndarray:
    """Return the normalised edge-gated gradient magnitude of an HxWx3 uint8 RGB image, float32 in [0, 1].

    An image without Canny edges (flat, or too dark to pass the thresholds) gives all zeros rather than
    dividing by zero.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    grey_u8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = grey_u8.astype(np.float32)
    grad_x = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    grad_y = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    magnitude = np.sqrt(grad_x * grad_x + grad_y * grad_y)
    edges = cv2.Canny(grey_u8, CANNY_LOW, CANNY_HIGH) > 0
    field = magnitude * edges
    peak = float(field.max())
    if peak > 0:
        field /= peak
    return field.astype(np.float32, copy=False)
