"""The constants that define the photometric error, shared by its PyTorch reference and its fused kernel.

`depthcli.losses.photometric` (the definition) and `depthcli.kernels.photometric_triton` (the kernel
tested against it) both read them here, so neither imports the other for them. Values: monodepth2's
SSIM (C1 = 0.01^2, C2 = 0.03^2 on images in [0, 1]) weighted 0.85 against 0.15 L1 (docs/methods.md).
"""

from __future__ import annotations

import torch

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
SSIM_WEIGHT = 0.85
L1_WEIGHT = 0.15
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # the kernel computes in float32 either way
