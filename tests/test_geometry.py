"""Closed-form checks of depthcli.geometry: warps, pose vectors, intrinsics conventions, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from depthcli import geometry as geo


def _intrinsics(fx, fy, cx, cy, batch=1, dtype=torch.float32):
    K = torch.eye(4, dtype=dtype)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = fx, fy, cx, cy
    return K.expand(batch, 4, 4).clone()


def _random_image(batch, channels, height, width, dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, channels, height, width, generator=generator, dtype=dtype)


def test_identity_pose_warps_image_onto_itself():
    height, width = 12, 20
    K = _intrinsics(15.0, 14.0, 9.3, 5.7, batch=2)
    image = _random_image(2, 3, height, width)
    depth = 1 + 4 * _random_image(2, 1, height, width)
    T = torch.eye(4).expand(2, 4, 4)
    warped = geo.warp_frame(image, depth, T, K, torch.linalg.inv(K))
    torch.testing.assert_close(warped, image, atol=1e-5, rtol=0)


def test_x_translation_of_fronto_parallel_plane_shifts_by_fx_t_over_z():
    height, width, fx, depth_z = 8, 24, 20.0, 5.0
    K = _intrinsics(fx, fx, 11.5, 3.5)
    image = _random_image(1, 3, height, width)
    depth = torch.full((1, 1, height, width), depth_z)
    translation = 0.5  # camera moves so that target points appear fx*t/Z = 2 px further right in the source
    T = geo.pose_vec_to_mat(torch.zeros(1, 3), torch.tensor([[translation, 0.0, 0.0]]))
    warped = geo.warp_frame(image, depth, T, K, torch.linalg.inv(K))
    shift = round(fx * translation / depth_z)
    assert shift == 2
    torch.testing.assert_close(warped[..., : width - shift], image[..., shift:], atol=1e-5, rtol=0)
    # border padding: pixels that land beyond the right edge repeat the last column
    torch.testing.assert_close(warped[..., width - 1], image[..., width - 1], atol=1e-5, rtol=0)


def test_fractional_shift_is_linear_interpolation():
    height, width, fx = 4, 16, 10.0
    K = _intrinsics(fx, fx, 7.5, 1.5)
    image = _random_image(1, 1, height, width)
    depth = torch.full((1, 1, height, width), 4.0)
    T = geo.pose_vec_to_mat(torch.zeros(1, 3), torch.tensor([[-0.1, 0.0, 0.0]]))  # -0.25 px
    warped = geo.warp_frame(image, depth, T, K, torch.linalg.inv(K))
    expected = 0.75 * image[..., 1:] + 0.25 * image[..., :-1]
    torch.testing.assert_close(warped[..., 1:], expected, atol=1e-5, rtol=0)


def test_pose_vec_to_mat_90_degrees_about_y():
    T = geo.pose_vec_to_mat(torch.tensor([[0.0, math.pi / 2, 0.0]]), torch.tensor([[1.0, 2.0, 3.0]]))
    expected = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 2.0], [-1.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 1.0]]])
    torch.testing.assert_close(T, expected, atol=1e-6, rtol=0)


def test_pose_vec_to_mat_matches_matrix_exponential_and_zero_rotation():
    axisangle = torch.tensor([[0.3, -0.2, 0.5], [0.0, 0.0, 0.0], [1e-6, 0.0, -2e-6]], dtype=torch.float64)
    R = geo.pose_vec_to_mat(axisangle, torch.zeros(3, 3, dtype=torch.float64))[:, :3, :3]
    skew = torch.zeros(3, 3, 3, dtype=torch.float64)
    for i, (x, y, z) in enumerate(axisangle.tolist()):
        skew[i] = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], dtype=torch.float64)
    torch.testing.assert_close(R, torch.linalg.matrix_exp(skew), atol=1e-12, rtol=0)


def test_invert_gives_matrix_inverse():
    axisangle = torch.tensor([[0.1, 0.4, -0.3], [-0.7, 0.2, 0.05]])
    translation = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    T = geo.pose_vec_to_mat(axisangle, translation)
    T_inv = geo.pose_vec_to_mat(axisangle, translation, invert=True)
    torch.testing.assert_close(T_inv, torch.linalg.inv(T), atol=1e-6, rtol=0)


def test_scale_intrinsics_half_pixel_convention_matches_interpolate():
    # A 1-pixel bright dot at (u, v) = (6, 2) of a 16x8 image; after 2x downsampling (area = the
    # exact 2x2 mean, same centres as bilinear align_corners=False) its centre of mass sits at
    # 0.5 * (u + 0.5) - 0.5, which is where the scaled K must project the same ray.
    K = _intrinsics(10.0, 10.0, 6.0, 2.0)
    K_half = geo.scale_intrinsics(K, 0.5, 0.5)
    torch.testing.assert_close(K_half[0, :2, 2], torch.tensor([2.75, 0.75]))
    torch.testing.assert_close(K_half[0, 0, 0], torch.tensor(5.0))
    image = torch.zeros(1, 1, 8, 16)
    image[..., 2:4, 6:8] = 1.0  # a 2x2 block covering pixel centres 6..7, i.e. centre 6.5
    small = F.interpolate(image, scale_factor=0.5, mode="bilinear", align_corners=False)
    assert small[0, 0, 1, 3] == 1.0  # block centre 6.5 -> 0.5 * 7 - 0.5 = 3
    K_block = _intrinsics(10.0, 10.0, 6.5, 2.5)
    torch.testing.assert_close(geo.scale_intrinsics(K_block, 0.5, 0.5)[0, :2, 2], torch.tensor([3.0, 1.0]))


def test_scale_intrinsics_per_sample_and_crop():
    K = _intrinsics(10.0, 8.0, 4.0, 3.0, batch=2)
    scaled = geo.scale_intrinsics(K, torch.tensor([2.0, 0.5]), torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(scaled[:, 0, 0], torch.tensor([20.0, 5.0]))
    torch.testing.assert_close(scaled[:, 1, 1], torch.tensor([8.0, 2.0]))
    torch.testing.assert_close(scaled[:, 0, 2], torch.tensor([2 * 4.5 - 0.5, 0.5 * 4.5 - 0.5]))
    torch.testing.assert_close(scaled[:, 1, 2], torch.tensor([3.0, 0.25 * 3.5 - 0.5]))
    cropped = geo.crop_intrinsics(K, torch.tensor([1.0, 3.0]), 2)
    torch.testing.assert_close(cropped[:, 0, 2], torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(cropped[:, 1, 2], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(cropped[:, 0, 0], K[:, 0, 0])


def test_crop_intrinsics_agrees_with_cropping_the_warp():
    # Warping a crop (source and depth cropped alike) with cropped intrinsics equals cropping the
    # full-image warp, wherever the motion (< 0.5 px here) keeps samples inside the crop.
    height, width = 10, 16
    K = _intrinsics(12.0, 12.0, 7.5, 4.5)
    image = _random_image(1, 2, height, width)
    depth = 3 + _random_image(1, 1, height, width)
    T = geo.pose_vec_to_mat(torch.tensor([[0.0, 0.01, 0.0]]), torch.tensor([[0.05, 0.0, 0.0]]))
    full = geo.warp_frame(image, depth, T, K, torch.linalg.inv(K))
    x0, y0, w, h = 4, 3, 8, 5
    K_crop = geo.crop_intrinsics(K, x0, y0)
    crop = (..., slice(y0, y0 + h), slice(x0, x0 + w))
    warped_crop = geo.warp_frame(image[crop], depth[crop], T, K_crop, torch.linalg.inv(K_crop))
    torch.testing.assert_close(warped_crop[..., 1:-1, 1:-1], full[crop][..., 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_normalised_intrinsics_round_trip_and_centre():
    K_norm = torch.tensor([[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]])
    K = geo.intrinsics_from_normalised(K_norm, 640, 192)
    assert K.shape == (4, 4) and K.dtype == torch.float32
    torch.testing.assert_close(K[:2, 2], torch.tensor([319.5, 95.5]))  # exact image centre
    torch.testing.assert_close(K[0, 0], torch.tensor(0.58 * 640))
    torch.testing.assert_close(geo.intrinsics_to_normalised(K, 640, 192)[:3, :3], K_norm)
    # normalised intrinsics are resolution-free: the same K_norm at half size == scale_intrinsics
    torch.testing.assert_close(geo.intrinsics_from_normalised(K_norm, 320, 96), geo.scale_intrinsics(K, 0.5, 0.5))


def test_backproject_project_round_trip_across_pyramid_levels():
    height, width = 8, 16
    K = _intrinsics(9.0, 9.0, 7.5, 3.5, batch=2)
    depth = 1 + _random_image(2, 1, height, width)
    points = geo.backproject(depth, torch.linalg.inv(K))
    assert points.shape == (2, 4, height * width)
    torch.testing.assert_close(points[:, 2], depth.reshape(2, -1))
    T = torch.eye(4).expand(2, 4, 4)
    grid = geo.project_to_grid(points, K, T, height, width)
    u = torch.arange(width, dtype=torch.float32)
    v = torch.arange(height, dtype=torch.float32)
    torch.testing.assert_close(grid[0, 0, :, 0], (2 * u + 1) / width - 1)
    torch.testing.assert_close(grid[1, :, 0, 1], (2 * v + 1) / height - 1)
    # projecting arbitrary 3-D points with level-1 intrinsics lands where resizing moves the full-res
    # pixel: u1 = 0.5 * (u + 0.5) - 0.5 (grid -> pixels: u = ((x + 1) * W - 1) / 2 at each level's W)
    K1 = geo.scale_intrinsics(K, 0.5, 0.5)
    rotation = geo.pose_vec_to_mat(torch.tensor([[0.1, -0.2, 0.05]] * 2), torch.tensor([[0.3, 0.1, 0.2]] * 2))
    full = geo.project_to_grid(points, K, rotation, height, width)
    level1 = geo.project_to_grid(points, K1, rotation, height, width)
    u_full = ((full[..., 0] + 1) * width - 1) / 2
    v_full = ((full[..., 1] + 1) * height - 1) / 2
    u_level1 = ((level1[..., 0] + 1) * width - 1) / 2  # same normalising W: only K differs
    v_level1 = ((level1[..., 1] + 1) * height - 1) / 2
    torch.testing.assert_close(u_level1, 0.5 * (u_full + 0.5) - 0.5, atol=1e-5, rtol=0)
    torch.testing.assert_close(v_level1, 0.5 * (v_full + 0.5) - 0.5, atol=1e-5, rtol=0)
    # and the level-1 image warped with K1 is the downsampled full-res warp for a fronto-parallel plane
    image = _random_image(2, 1, height, width)
    plane = torch.full((2, 1, height, width), 4.0)
    shift = geo.pose_vec_to_mat(torch.zeros(2, 3), torch.tensor([[8 / 9.0, 0.0, 0.0]] * 2))  # 2 px at full res
    warped_full = geo.warp_frame(image, plane, shift, K, torch.linalg.inv(K))
    small = F.avg_pool2d(image, 2)
    warped_small = geo.warp_frame(small, plane[..., ::2, ::2], shift, K1, torch.linalg.inv(K1))
    torch.testing.assert_close(warped_small[..., :-1], F.avg_pool2d(warped_full, 2)[..., :-1], atol=1e-5, rtol=0)


def test_disp_depth_conversions():
    disp = torch.tensor([0.0, 0.5, 1.0])
    scaled, depth = geo.disp_to_depth(disp, 0.1, 100.0)
    torch.testing.assert_close(scaled, torch.tensor([0.01, 0.01 + 0.5 * 9.99, 10.0]))
    torch.testing.assert_close(depth, 1 / scaled)
    torch.testing.assert_close(geo.depth_to_disp(depth, 0.1, 100.0), disp, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0])
def test_gradcheck_backproject_project(seed):
    torch.manual_seed(seed)
    height, width = 3, 4
    depth = (1 + torch.rand(1, 1, height, width, dtype=torch.float64)).requires_grad_()
    K = _intrinsics(4.0, 4.0, 1.5, 1.0, dtype=torch.float64).requires_grad_()
    T = geo.pose_vec_to_mat(
        torch.tensor([[0.05, -0.1, 0.02]], dtype=torch.float64), torch.tensor([[0.1, 0.0, -0.05]], dtype=torch.float64)
    ).requires_grad_()

    def run(depth, K, T):
        return geo.project_to_grid(geo.backproject(depth, torch.linalg.inv(K)), K, T, height, width)

    assert torch.autograd.gradcheck(run, (depth, K, T))


def test_gradcheck_pose_vec_to_mat():
    axisangle = torch.tensor([[0.3, -0.2, 0.5], [1e-5, 2e-5, 0.0]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[0.1, 0.2, 0.3], [0.0, -1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(geo.pose_vec_to_mat, (axisangle, translation))
    assert torch.autograd.gradcheck(lambda a, t: geo.pose_vec_to_mat(a, t, invert=True), (axisangle, translation))


def test_gradcheck_warp_frame():
    torch.manual_seed(1)
    height, width = 4, 5
    source = torch.rand(1, 2, height, width, dtype=torch.float64, requires_grad=True)
    depth = (2 + torch.rand(1, 1, height, width, dtype=torch.float64)).requires_grad_()
    axisangle = torch.tensor([[0.02, 0.03, -0.01]], dtype=torch.float64, requires_grad=True)
    translation = torch.tensor([[0.13, -0.07, 0.05]], dtype=torch.float64, requires_grad=True)
    K = _intrinsics(4.0, 4.0, 2.0, 1.5, dtype=torch.float64)

    def run(source, depth, axisangle, translation):
        T = geo.pose_vec_to_mat(axisangle, translation)
        return geo.warp_frame(source, depth, T, K, torch.linalg.inv(K))

    assert torch.autograd.gradcheck(run, (source, depth, axisangle, translation))
