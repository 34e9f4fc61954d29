"""Self-supervised monocular training: the monodepth2 recipe, DIFFNet on it, and RA-Depth (docs/methods.md).

`SelfSupTask` turns a batch of sample dicts into losses: depth from the target frame, poses of the
neighbours from a separate pose net, view synthesis of the target from each neighbour, automasked
min-reprojection + edge-aware smoothness per scale (disparities upsampled to full resolution, as
monodepth2). With `arbitrary_scale` (RA-Depth) the same loss is taken on the middle, high and low
variants of `depthcli.data.arbitrary_scale` (scale 0 only, poses from the middle frames reused for all
three) plus the cross-scale consistency of their disparities.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from depthcli.engine.distributed import DistContext
from depthcli.engine.runner import Recipe, RecipeData
from depthcli.engine.task import TrainingTask, coloured_disparity
from depthcli.engine.validation import protocol_metrics
from depthcli.errors import DepthcliError
from depthcli.geometry import disp_to_depth, pose_vec_to_mat, warp_frame
from depthcli.losses.consistency import CrossScaleConsistency
from depthcli.losses.photometric import min_reprojection_loss, photometric_error
from depthcli.losses.smoothness import EdgeAwareSmoothness
from depthcli.nets import build_depth_net, build_pose_net
from depthcli.nets.pose import predates_two_poses
from depthcli.recipe_configs import SELFSUP, SelfSupConfig


class SelfSupTask(TrainingTask):
    """Depth net + pose net and the self-supervised losses of one batch (see the module docstring)."""

    def __init__(self, config: SelfSupConfig) -> None:
        super().__init__()
        if 0 not in config.frame_ids or len(config.frame_ids) < 2:
            raise DepthcliError(f"frame_ids {list(config.frame_ids)} must hold the target 0 and at least one source")
        self.config = config
        depth = build_depth_net(config.net, scales=tuple(config.scales))
        missing = set(config.scales) - set(depth.scales)
        if missing:
            raise DepthcliError(
                f"depth net {config.net!r} has no output scales {sorted(missing)}; set scales accordingly"
            )
        self.networks["depth"] = depth
        self.networks["pose"] = build_pose_net(config.pose_net)
        if config.initial_forward_motion:
            self.networks["pose"].decoder.start_moving_forward(config.initial_forward_motion)
        self.smoothness = EdgeAwareSmoothness()
        self.consistency = CrossScaleConsistency(config.consistency_low_mask)
        self.sources = tuple(f for f in config.frame_ids if f != 0)
        # the automask's tie noise comes from torch's global RNG unless a generator is set here (parity tests
        # set one seeded as the official trainer's run was, see docs/parity.md)
        self.tie_noise_generator: torch.Generator | None = None
        self.boundary = None
        if config.boundary_loss:
            from depthcli.losses.boundary import BoundaryLoss
            from depthcli.nets.inverse_transform import load_boundary_net

            if not config.boundary_net:
                raise DepthcliError("boundary_loss needs boundary_net (a trained inverse-transform net checkpoint)")
            self.boundary = BoundaryLoss(load_boundary_net(config.boundary_net)[0])

    def load_checkpoint_payload(self, payload: dict[str, Any], path) -> None:
        """As the base class; a run saved before the pose decoder kept its second pose is one line."""
        pose = (payload.get("networks") or {}).get("pose")
        if isinstance(pose, dict) and predates_two_poses(pose):
            raise DepthcliError(
                f"checkpoint {path} predates the two-pose decoder (its pose head has 6 channels, this depthcli's "
                f"12), so it cannot be resumed; its depth net still predicts and evaluates, and `depthcli train "
                f"--init {path}` starts a new run from its weights (the first pose unchanged)"
            )
        super().load_checkpoint_payload(payload, path)

    # -- training ---------------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict[str, Tensor]:
        poses = self._poses(batch)
        middle, middle_selected, middle_disp = self._variant_loss(batch, batch[("color_aug", 0, 0)], 0, poses)
        losses = {}
        if self.config.automask:  # logged, not optimised: how much of the frame the photometric loss ignores
            losses["automask_dropped"] = middle_selected.float().mean()
        if self.boundary is not None:
            losses["boundary"] = self._boundary_loss(batch[("color", 0, 0)], middle_disp)
            boundary_weight = ramped_weight(self.config.boundary_weight, self.config.boundary_ramp, self.step)
            middle = middle + boundary_weight * losses["boundary"]
        if not self.config.arbitrary_scale:
            return {"loss": middle, **losses}
        high, _, high_disp = self._variant_loss(batch, batch[("color", 0, "high")], "high", poses)
        low, _, low_disp = self._variant_loss(batch, batch[("color", 0, "low")], "low", poses)
        consistency = self.consistency(
            middle_disp,
            high_disp,
            batch[("size", "high")],
            batch[("offset", "high")],
            low_disp,
            batch[("size", "low")],
            middle_selected,
        )
        consistency_weight = ramped_weight(self.config.consistency_weight, self.config.consistency_ramp, self.step)
        total = middle + high + low + consistency_weight * consistency
        return {
            "loss": total,
            "photometric_middle": middle,
            "photometric_high": high,
            "photometric_low": low,
            "consistency": consistency,
            **losses,
        }

    def _boundary_loss(self, image: Tensor, disp: Tensor) -> Tensor:
        from depthcli.losses.boundary import sobel_edges

        return self.boundary(sobel_edges(disp), sobel_edges(image))

    def _poses(self, batch: dict) -> dict[int, Tensor]:
        """T (B,4,4) mapping target-camera points into each source camera (from the jittered frames unless
        `pose_jitter` is off)."""
        poses, images = {}, "color_aug" if self.config.pose_jitter else "color"
        for frame in self.sources:
            pair = (frame, 0) if frame < 0 else (0, frame)
            with self.net_autocast():
                axisangle, translation = self.networks["pose"](*(batch[(images, f, 0)] for f in pair))
            poses[frame] = pose_vec_to_mat(axisangle.float(), translation.float(), invert=frame < 0)
        return poses

    def _variant_loss(self, batch: dict, net_input: Tensor, variant, poses) -> tuple[Tensor, Tensor, Tensor]:
        """Automasked min-reprojection + smoothness, averaged over scales, for one image variant.

        `variant` is the third element of the variant's keys: 0 (the sample itself), "high" or "low".
        Returns (loss, identity_selected at scale 0, disparity at scale 0).
        """
        cfg = self.config
        with self.net_autocast():
            outputs = self.networks["depth"](net_input)
        target = batch[("color", 0, variant)]
        sources = {f: batch[("color", f, variant)] for f in self.sources}
        K, inv_K = batch[("K", variant)], batch[("inv_K", variant)]
        height, width = target.shape[-2:]
        identity = None
        if cfg.automask:
            identity = torch.cat([photometric_error(sources[f], target) for f in self.sources], 1)
        total = target.new_zeros(())
        for scale in cfg.scales:
            disp = outputs[("disp", scale)].float()
            full = disp if scale == 0 else F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
            warped = self._warped_sources(sources, full, poses, K, inv_K)
            reprojection = torch.cat([photometric_error(warped[f], target) for f in self.sources], 1)
            loss_map, selected = min_reprojection_loss(reprojection, identity, generator=self.tie_noise_generator)
            color = target if scale == 0 else F.interpolate(target, size=disp.shape[-2:], mode="area")
            total = total + loss_map.mean() + cfg.smoothness_weight / 2**scale * self.smoothness(disp, color)
            if scale == 0:
                selected_at_0, disp_at_0 = selected, disp
        return total / len(cfg.scales), selected_at_0, disp_at_0

    def _warped_sources(self, sources: dict, disp: Tensor, poses: dict, K: Tensor, inv_K: Tensor) -> dict[int, Tensor]:
        """Each source frame warped into the target camera with the target's (full-resolution) disparity."""
        _, depth = disp_to_depth(disp, self.config.min_depth, self.config.max_depth)
        return {f: warp_frame(sources[f], depth, poses[f], K, inv_K) for f in self.sources}

    # -- pictures -----------------------------------------------------------------------------------
    def visuals(self, batch: dict) -> dict[str, Tensor]:
        """monodepth2's pictures of a batch: the input, its disparity (colour-mapped), the first source frame
        and that frame warped into the target with the predicted depth and pose, and the automask (white:
        pixels the photometric loss keeps, where a warped source explains the target better than any
        source as it is)."""
        target, first = batch[("color", 0, 0)], self.sources[0]
        sources = {f: batch[("color", f, 0)] for f in self.sources}
        with self.net_autocast():
            disp = self.networks["depth"](batch[("color_aug", 0, 0)])[("disp", 0)].float()
        warped = self._warped_sources(sources, disp, self._poses(batch), batch[("K", 0)], batch[("inv_K", 0)])
        pictures = {
            "input": target,
            "disparity": coloured_disparity(disp),
            "source": sources[first],
            "warped_source": warped[first],
        }
        if self.config.automask:
            reprojection = torch.cat([photometric_error(warped[f], target) for f in self.sources], 1)
            identity = torch.cat([photometric_error(sources[f], target) for f in self.sources], 1)
            pictures["automask"] = (reprojection.min(1, keepdim=True)[0] < identity.min(1, keepdim=True)[0]).float()
        return pictures

    # -- validation ---------------------------------------------------------------------------------
    def validate(self, loader, device: torch.device) -> dict[str, float]:
        """Median-scaled depth metrics (protocol `val_protocol`) on samples that carry "depth_gt"."""
        cfg = self.config
        return protocol_metrics(loader, self.predict_scaled_disparity, cfg.size, cfg.val_protocol, "disp", True)

    def predict_scaled_disparity(self, images: Tensor) -> Tensor:
        """The depth net's disparity mapped to [1/max_depth, 1/min_depth] (what the KITTI protocol inverts)."""
        with self.net_autocast():
            disp = self.networks["depth"](images)[("disp", 0)]
        return disp_to_depth(disp.float(), self.config.min_depth, self.config.max_depth)[0]


def ramped_weight(weight: float, ramp: tuple[int, int] | None, step: int) -> float:
    """`weight` at `step` under a linear ramp (start, end): 0 until start, rising to `weight` at end, full
    after; no ramp (or (0, 0)) is the full weight from step 0. Used by `consistency_ramp` and `boundary_ramp`."""
    if ramp is None or step >= ramp[1]:
        return weight
    start, end = ramp
    if step < start:
        return 0.0
    return weight * (step - start) / (end - start)


# ------------------------------------------------------------------------------------ running a job
FROM_SCRATCH_FORWARD_MOTION = 0.005  # the pose net's starting forward motion in from-scratch runs


def from_scratch_schedule(max_steps: int) -> dict[str, Any]:
    """Config overrides for a short run from random weights with a known step count (demo, benchmark).

    LR warmup over the first sixth, x0.1 for the last quarter, and RA-Depth's cross-scale consistency and
    the InverseForm boundary loss brought in over the middle third: the still-random disparities must get
    their photometric structure first (at full weight from step 0 the consistency held them flat,
    trained == untrained, for most seeds of the CPU demo). Runs without either loss ignore the ramps.
    The pose net starts moving forward: from the papers' random pose head, DIFFNet's recipe on a hundred
    frames learned on 1 draw of 4, from this start on 3 of 3 (README, quality bar).
    """
    middle_third = (max_steps // 3, 2 * max_steps // 3)
    return {
        "max_steps": max_steps,
        "warmup_steps": max_steps // 6,
        "lr_decay_at": 0.75,
        "consistency_ramp": middle_third,
        "boundary_ramp": middle_third,
        "initial_forward_motion": FROM_SCRATCH_FORWARD_MOTION,
    }


def training_transform(config: SelfSupConfig):
    """The per-sample transform the recipe needs on top of the dataset's flip and jitter (or None)."""
    if not config.arbitrary_scale:
        return None
    from depthcli.data.arbitrary_scale import ArbitraryScaleAugment

    return ArbitraryScaleAugment(config.frame_ids, config.high_scale_range, config.low_scale_range)


def resolve_split(config: SelfSupConfig) -> SelfSupConfig:
    """A raw KITTI root is trained on through a split, so that its test drives stay out of training:
    `split`, else the root's own train_files.txt; neither is one line."""
    root = Path(config.data)
    if config.split is not None or not root.is_dir():
        return config
    own = root / "train_files.txt"
    if not own.is_file():
        raise DepthcliError(
            f"--data {root} is a KITTI raw root without train_files.txt: give --split (a split file such as "
            "eigen_zhou's train_files.txt), so that the drives you test on stay out of training"
        )
    return dataclasses.replace(config, split=str(own))


def open_training_data(config: SelfSupConfig, run_dir: Path, progress=None):
    """The training Dataset for `config.data` (a cache file, or a raw KITTI root cached into the run dir)."""
    from depthcli.data.cache import build_cache
    from depthcli.data.datasets import CachedKittiDataset

    data = Path(config.data)
    if not data.exists():
        raise DepthcliError(f"--data {data} does not exist; give a cache file or a KITTI raw root")
    if data.is_dir():
        size = config.size or (640, 192)
        data = build_cache(
            "kitti", data, run_dir / "train_cache.h5", split=config.split, size=size, progress=progress,
            frame_ids=(0, *sorted(f for f in config.frame_ids if f != 0)),
        )  # fmt: skip
    return CachedKittiDataset(
        data,
        frame_ids=config.frame_ids,
        augment=config.augment,
        transform=training_transform(config),
        intrinsics=config.intrinsics,
        uint8_images=True,  # collated as uint8, made float on the device by the loop
    )


def open_validation_data(config: SelfSupConfig):
    if not config.val_data:
        return None
    from depthcli.data.datasets import CachedKittiDataset

    if not Path(config.val_data).is_file():
        raise DepthcliError(f"--val-data {config.val_data} is not a cache file; build one with `depthcli cache`")
    return CachedKittiDataset(config.val_data, frame_ids=(0,), augment=False)


def resolve_size(config: SelfSupConfig, dataset) -> SelfSupConfig:
    """Fill `size` from the data (None) or check that the data has the configured size."""
    sample = dataset[0]
    height, width = sample[("color", 0, 0)].shape[-2:]
    if config.size is None:
        return dataclasses.replace(config, size=(int(width), int(height)))
    if tuple(config.size) != (width, height):
        raise DepthcliError(
            f"training data {config.data} holds {width}x{height} images but the size is "
            f"{config.size[0]}x{config.size[1]}; rebuild the cache at that size or leave --size out"
        )
    return config


def prepare_boundary_net(config: SelfSupConfig, run_dir: Path) -> SelfSupConfig:
    """With `boundary_loss` and no `boundary_net`: train the inverse-transform net once into the run dir."""
    if not config.boundary_loss or config.boundary_net:
        return config
    from depthcli.engine.boundary_net import train_inverse_transform_net
    from depthcli.nets.inverse_transform import save_boundary_net

    path = run_dir / "boundary_net.ckpt"
    if not path.is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        net, net_config = train_inverse_transform_net(steps=config.boundary_net_steps, seed=config.seed)
        save_boundary_net(path, net, net_config)
    return dataclasses.replace(config, boundary_net=str(path))


def open_selfsup_data(config: SelfSupConfig, run_dir: Path, ctx: DistContext) -> RecipeData:
    """The recipe's data: training set (its size fills `size`), validation set, the boundary net if needed."""
    config = resolve_split(config)
    dataset = open_training_data(config, run_dir)
    config = prepare_boundary_net(resolve_size(config, dataset), run_dir)
    return RecipeData(config, dataset, open_validation_data(config))


SELFSUP_RECIPE = Recipe(SELFSUP, SelfSupTask, open_selfsup_data)
