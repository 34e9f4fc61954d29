"""RA-Depth's dual-HRNet decoder: HRNet-like rounds of parallel convs with summed cross-resolution fusion.

Round by round the coarsest branch is merged away: every branch gets a ConvBlock, then each surviving
branch i adds the nearest-upsampled, 1x1-ConvBlock-projected outputs of all coarser branches j > i.
Branches 1..4 (1/4 ... 1/32) start; after three rounds only 1/4 is left, which the last round fuses
into the 1/2 stem feature. Two ConvBlocks then reach full resolution; one sigmoid disparity (scale 0).
"""

from __future__ import annotations

from torch import Tensor, nn

from depthcli.nets.layers import Conv3x3, ConvBlock, ConvBlock1x1, disparity_head, upsample

# encoder branches (index into the encoder's feature list) taking part in each fusion round
FUSION_ROUNDS = ((1, 2, 3, 4), (1, 2, 3), (1, 2), (0, 1))


class FusionRound(nn.Module):
    """Parallel ConvBlocks on `branches`, then summed fusion into every branch except the coarsest."""

    def __init__(self, branches: tuple[int, ...], num_ch_enc: list[int]) -> None:
        super().__init__()
        self.branches = branches
        self.convs = nn.ModuleDict({str(b): ConvBlock(num_ch_enc[b], num_ch_enc[b]) for b in branches})
        self.fuse = nn.ModuleDict(
            {
                f"{j}_to_{i}": ConvBlock1x1(num_ch_enc[j], num_ch_enc[i])
                for i in branches[:-1]
                for j in branches
                if j > i
            }
        )

    def forward(self, features: dict[int, Tensor]) -> dict[int, Tensor]:
        outs = {b: self.convs[str(b)](features[b]) for b in self.branches}
        fused = {}
        for i in self.branches[:-1]:
            total = outs[i]
            for j in self.branches:
                if j > i:  # upsample, then the 1x1 block, in the official code's order
                    total = total + self.fuse[f"{j}_to_{i}"](upsample(outs[j], 2 ** (j - i)))
            fused[i] = total
        return fused


class RADepthDecoder(nn.Module):
    """Four fusion rounds, then ConvBlock(64->32), upsample x2, ConvBlock(32->16), Conv3x3 -> disparity."""

    def __init__(self, num_ch_enc: list[int]) -> None:
        super().__init__()
        self.scales = (0,)
        self.rounds = nn.ModuleList(FusionRound(branches, num_ch_enc) for branches in FUSION_ROUNDS)
        self.up_conv0 = ConvBlock(num_ch_enc[0], 32)
        self.up_conv1 = ConvBlock(32, 16)
        self.dispconv = Conv3x3(16, 1)

    def forward(self, features: list[Tensor]) -> dict[tuple[str, int], Tensor]:
        state = dict(enumerate(features))
        for fusion in self.rounds:
            state.update(fusion({b: state[b] for b in fusion.branches}))
        x = self.up_conv1(upsample(self.up_conv0(state[0])))
        return {("disp", 0): disparity_head(self.dispconv, x)}
