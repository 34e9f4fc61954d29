"""The depth-net wrapper shared by every architecture: size check, encoder, decoder -> disparity dict."""

from __future__ import annotations

from torch import Tensor, nn

from depthcli.sizes import check_size, format_size


def check_input_size(width: int, height: int) -> None:
    """DepthcliError naming the size and the nearest valid sizes unless it follows `depthcli.sizes`' rule."""
    check_size(width, height, f"input size {format_size((width, height))}")


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
