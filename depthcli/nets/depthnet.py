"""The depth-net wrapper shared by every architecture: size check, encoder, decoder -> disparity dict."""

from __future__ import annotations

from torch import Tensor, nn

from depthcli.errors import DepthcliError
from depthcli.sizes import check_size_bounds, format_size

# Five stride-2 stages: sides must divide by 2**5 for the decoder's upsampling to land on the input size,
# and give at least 2 pixels at the deepest stage, which the decoders' reflection padding needs.
SIZE_MULTIPLE = 32
MIN_SIDE = 2 * SIZE_MULTIPLE


def check_input_size(width: int, height: int) -> None:
    """DepthcliError naming the size and the nearest valid sizes unless both sides are multiples of 32, >= 64
    (and within `depthcli.sizes.check_size_bounds`)."""
    if width % SIZE_MULTIPLE == 0 and height % SIZE_MULTIPLE == 0 and min(width, height) >= MIN_SIDE:
        check_size_bounds(width, height, "input size")
        return

    def around(value: int) -> list[int]:
        lower = max(MIN_SIDE, value // SIZE_MULTIPLE * SIZE_MULTIPLE)
        upper = max(MIN_SIDE, -(-value // SIZE_MULTIPLE) * SIZE_MULTIPLE)
        return sorted({lower, upper})

    candidates = sorted(
        {(w, h) for w in around(width) for h in around(height)},
        key=lambda size: (abs(size[0] - width) + abs(size[1] - height), size),
    )
    raise DepthcliError(
        f"input size {format_size((width, height))}: depth nets need width and height that are multiples of "
        f"{SIZE_MULTIPLE} and at least {MIN_SIDE}; resize or crop to a nearby valid size such as "
        + " or ".join(format_size(size) for size in candidates[:2])
    )


class DepthNet(nn.Module):
    """Encoder + decoder; forward(image (B,3,H,W) in [0,1]) -> {("disp", s): (B,1,H/2**s,W/2**s)}.

    `stage_features=True` feeds the decoder every stage output per resolution (DIFFNet) instead of the
    encoder's final five feature maps.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, stage_features: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.scales: tuple[int, ...] = tuple(decoder.scales)
        self.stage_features = stage_features

    def forward(self, image: Tensor) -> dict[tuple[str, int], Tensor]:
        check_input_size(image.shape[-1], image.shape[-2])
        features = self.encoder.forward_stages(image) if self.stage_features else self.encoder(image)
        return self.decoder(features)
