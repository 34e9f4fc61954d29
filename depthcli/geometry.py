"""Camera geometry for view synthesis: intrinsics, backprojection, projection, pose vectors, disparity.

Pixel convention (the one every depthcli module relies on, see docs/architecture.md):

- Intrinsics `K` are 4x4 in *pixels* at the resolution of the tensor they are used with.
- Pixel centres sit at integer coordinates `u = 0..W-1`, `v = 0..H-1`; the image covers the continuous
  interval `[-0.5, W - 0.5]`.
- `grid_sample` is always called with `align_corners=False`, whose normalised coordinate -1 is the left
  *edge* of the image, so pixel `u` maps to `x_norm = (2u + 1) / W - 1` (same for `v` with `H`).
  `project_to_grid` uses exactly this formula. (monodepth2 normalises with `u / (W - 1)` - the
  `align_corners=True` formula - but samples with `align_corners=False`, a silent half-pixel shift
  that grows with the resolution; we do not copy it.)
- Resizing an image by a factor `s` (what `F.interpolate(..., align_corners=False)` does) maps a
  pixel centre `u` to `s * (u + 0.5) - 0.5`. Hence `scale_intrinsics` gives `fx' = s * fx` and
  `cx' = s * (cx + 0.5) - 0.5`. For pyramid level `k` use `sx = sy = 1 / 2**k`.
- *Normalised* intrinsics (stored in caches) are the same camera in continuous image coordinates
  that run from 0 (left edge) to 1 (right edge): `fx_n = fx / W` and `cx_n = (cx + 0.5) / W`.
  `intrinsics_from_normalised` / `intrinsics_to_normalised` convert; KITTI's usual normalised matrix
  `[[0.58, 0, 0.5], [0, 1.92, 0.5]]` thus puts the principal point exactly at the image centre.

Every function is plain differentiable torch and works on a batch dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_PROJECTION_EPS = 1e-7  # keeps the perspective division finite for points on the camera plane


def _as_batch_scalar(value, like: torch.Tensor) -> torch.Tensor:
    """A python number or a (B,) tensor as a tensor of `like`'s dtype/device (keeps autograd history)."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def _pixel_frame_change(K: torch.Tensor, ax, ay, bx, by) -> torch.Tensor:
    """Return `A @ K` for the pixel-coordinate change `u' = ax * u + bx`, `v' = ay * v + by`.

    `K` is (..., 3, 3) or (..., 4, 4); `ax, ay, bx, by` are numbers or tensors broadcasting over the
    leading dims of `K`. Implemented as a matrix product so that it stays differentiable and
    preserves skew.
    """
    size = K.shape[-1]
    lead = K.shape[:-2]
    A = torch.eye(size, dtype=K.dtype, device=K.device).expand(*lead, size, size).clone()
    A[..., 0, 0] = _as_batch_scalar(ax, K)
    A[..., 1, 1] = _as_batch_scalar(ay, K)
    A[..., 0, 2] = _as_batch_scalar(bx, K)
    A[..., 1, 2] = _as_batch_scalar(by, K)
    return A @ K


def scale_intrinsics(K: torch.Tensor, sx, sy) -> torch.Tensor:
    """Intrinsics of the image resized by `sx` horizontally and `sy` vertically (pixel centres at integers).

    `fx' = sx * fx`, `cx' = sx * (cx + 0.5) - 0.5` (likewise for y), matching
    `F.interpolate(..., align_corners=False)`. `sx`, `sy` may be numbers or (B,) tensors (per-sample
    scales, as in RA-Depth's arbitrary-scale augmentation).
    """
    sx_t = _as_batch_scalar(sx, K)
    sy_t = _as_batch_scalar(sy, K)
    return _pixel_frame_change(K, sx_t, sy_t, (sx_t - 1) / 2, (sy_t - 1) / 2)


def crop_intrinsics(K: torch.Tensor, x0, y0) -> torch.Tensor:
    """Intrinsics of a crop whose top-left pixel is `(x0, y0)` of the image `K` describes.

    `x0`, `y0` may be numbers or (B,) tensors.
    """
    x0_t = _as_batch_scalar(x0, K)
    y0_t = _as_batch_scalar(y0, K)
    return _pixel_frame_change(K, 1.0, 1.0, -x0_t, -y0_t)


def _to_4x4(K: torch.Tensor) -> torch.Tensor:
    if K.shape[-2:] == (4, 4):
        return K
    if K.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must be 3x3 or 4x4, got shape {tuple(K.shape)}")
    out = torch.eye(4, dtype=K.dtype, device=K.device).expand(*K.shape[:-2], 4, 4).clone()
    out[..., :3, :3] = K
    return out


def intrinsics_from_normalised(K_norm, width: int, height: int) -> torch.Tensor:
    """Pixel 4x4 intrinsics at `width` x `height` from normalised (3x3 or 4x4) intrinsics.

    A 2x3 or 3x4 KITTI-style top block is not accepted: pad it to 3x3 first. Returns float32 unless
    `K_norm` is a floating tensor of another dtype.
    """
    K_norm = torch.as_tensor(K_norm)
    if not K_norm.is_floating_point():
        K_norm = K_norm.float()
    K4 = _to_4x4(K_norm)
    return _pixel_frame_change(K4, float(width), float(height), -0.5, -0.5)


def intrinsics_to_normalised(K: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Inverse of `intrinsics_from_normalised`: normalised 4x4 intrinsics from pixel intrinsics."""
    K4 = _to_4x4(torch.as_tensor(K))
    return _pixel_frame_change(K4, 1.0 / width, 1.0 / height, 0.5 / width, 0.5 / height)


def pixel_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates (3, H*W): rows u, v, 1 in row-major order."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width, dtype=dtype, device=device)])


def backproject(depth: torch.Tensor, inv_K: torch.Tensor) -> torch.Tensor:
    """Lift every pixel of `depth` (B,1,H,W) to homogeneous camera points (B,4,H*W) with `inv_K` (B,4,4)."""
    batch, _, height, width = depth.shape
    pixels = pixel_grid(height, width, dtype=depth.dtype, device=depth.device)
    rays = inv_K[:, :3, :3] @ pixels  # (B,3,N)
    points = rays * depth.reshape(batch, 1, -1)
    ones = torch.ones_like(points[:, :1])
    return torch.cat([points, ones], dim=1)


def project_to_grid(points: torch.Tensor, K: torch.Tensor, T: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Project homogeneous points (B,4,N=H*W) through pose `T` (B,4,4) and `K` (B,4,4) to a sampling grid.

    Returns (B,H,W,2) coordinates normalised for `grid_sample(..., align_corners=False)`:
    `x_norm = (2u + 1) / W - 1`, `y_norm = (2v + 1) / H - 1`.
    """
    camera = (K @ T)[:, :3, :] @ points  # (B,3,N)
    pixels = camera[:, :2] / (camera[:, 2:3] + _PROJECTION_EPS)
    u, v = pixels[:, 0], pixels[:, 1]
    x_norm = (2 * u + 1) / width - 1
    y_norm = (2 * v + 1) / height - 1
    return torch.stack([x_norm, y_norm], dim=-1).reshape(points.shape[0], height, width, 2)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices (B,3,3) of vectors (B,3)."""
    zero = torch.zeros_like(v[:, 0])
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return torch.stack(
        [
            torch.stack([zero, -z, y], dim=-1),
            torch.stack([z, zero, -x], dim=-1),
            torch.stack([-y, x, zero], dim=-1),
        ],
        dim=1,
    )


def axisangle_to_rotation(axisangle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: rotation matrices (B,3,3) from axis-angle vectors (B,3) (angle = norm, radians).

    Uses `R = I + a [v]x + b [v]x^2` with `a = sin t / t`, `b = (1 - cos t) / t^2` and their Taylor
    series near `t = 0`, so that it is exact and differentiable at the zero rotation as well.
    """
    theta_sq = (axisangle**2).sum(dim=1)
    small = theta_sq < 1e-8
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    a = torch.where(small, 1 - theta_sq / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24, (1 - torch.cos(theta)) / safe_sq)
    skew = _skew(axisangle)
    eye = torch.eye(3, dtype=axisangle.dtype, device=axisangle.device).expand_as(skew)
    return eye + a[:, None, None] * skew + b[:, None, None] * (skew @ skew)


def pose_vec_to_mat(axisangle: torch.Tensor, translation: torch.Tensor, invert: bool = False) -> torch.Tensor:
    """4x4 rigid transforms (B,4,4) `[R | t]` from axis-angle (B,3) and translation (B,3).

    `invert=True` returns the exact inverse `[R^T | -R^T t]` (monodepth2 uses it for frames before the
    target, whose pose the network predicts in the opposite direction).
    """
    R = axisangle_to_rotation(axisangle)
    t = translation.unsqueeze(-1)
    if invert:
        R = R.transpose(1, 2)
        t = -R @ t
    top = torch.cat([R, t], dim=2)
    bottom = torch.zeros_like(top[:, :1])
    bottom[:, 0, 3] = 1
    return torch.cat([top, bottom], dim=1)


def disp_to_depth(disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0):
    """Map sigmoid disparity in [0,1] to (scaled disparity in [1/max, 1/min], depth = 1/scaled)."""
    min_disp = 1 / max_depth
    max_disp = 1 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1 / scaled_disp


def depth_to_disp(depth: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> torch.Tensor:
    """Inverse of `disp_to_depth`: the sigmoid disparity in [0,1] whose depth is `depth`."""
    min_disp = 1 / max_depth
    max_disp = 1 / min_depth
    return (1 / depth - min_disp) / (max_disp - min_disp)


def warp_frame(
    source: torch.Tensor,
    depth: torch.Tensor,
    T_target_to_source: torch.Tensor,
    K: torch.Tensor,
    inv_K: torch.Tensor,
) -> torch.Tensor:
    """Synthesise the target view (B,C,H,W) by sampling `source` where the target's pixels land in it.

    `depth` (B,1,H,W) is the target's depth, `T_target_to_source` (B,4,4) maps target-camera points to
    source-camera points; `K`/`inv_K` (B,4,4) are the pixel intrinsics at this resolution. Sampling is
    bilinear with border padding and `align_corners=False` (see the module docstring).
    """
    _, _, height, width = depth.shape
    points = backproject(depth, inv_K)
    grid = project_to_grid(points, K, T_target_to_source, height, width)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
