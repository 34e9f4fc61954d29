"""Inference speed, side by side: `depthcli predict` vs monodepth2's test_simple.py loop on KITTI frames.

    python benchmarks/bench_predict.py [--frames 40] [--rounds 3] [--batch-size 8] [--workers 2]
        [--threads N] [--size 640x192] [--save jpg,npy] [--kitti DIR] [--monodepth2 DIR] [--device cpu|cuda]
        [--json OUT]

Frames: the real 1242x375 KITTI frames of `--kitti`, repeated under new names up to `--frames` (links,
so every side decodes real PNGs). Both sides use the same weights: monodepth2's own ResNet-18 encoder
and depth decoder (its `monodepth2==1.0.0` wheel, see `reference/monodepth2_ref.py`), initialised with
a fixed seed (BatchNorm statistics gathered on the frames, so that outputs are not flat), saved as a
release folder and imported with `depthcli weights import`'s code.

Sides, alternating in rounds over all frames (images/s, `sidebyside`):
- "test_simple.py loop": monodepth2's test_simple.py body per image: PIL open, LANCZOS resize to
  the network size (640x192), ToTensor, encoder + decoder forward (batch 1), bilinear resize of the disparity to the
  input size, `disp_to_depth`, save the scaled-disparity .npy and a matplotlib-colormapped JPEG;
- "depthcli predict": `depthcli.predict.predict` (what the CLI runs) with its defaults: batches,
  decoding in DataLoader workers, a writer thread, `--amp auto` (bf16 where the CPU has it); it saves
  what the loop saves (`--save jpg,npy`: the colour-mapped JPEG and the scaled-disparity .npy; `--save
  png,npy` times predict's default lossless PNG instead, whose encoding costs more than the net's forward);
- "depthcli predict fp32": the same with `amp="off"`.
Without monodepth2's code (`--reference auto`, the default, notes it) the loop side is left out and
the weights are depthcli's own seeded monodepth2 net.

Outputs are compared too: the networks on one identical input (float32 must agree to 1e-5, bf16 within
1e-2 sigmoid disparity), and every saved disparity of depthcli's two runs against each other and
against the loop's (the loop resizes with PIL's LANCZOS, depthcli with antialiased bilinear - the
resize `depthcli eval` uses - so these differ by the resize alone).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from depthcli.threads import prefer_passive_omp_wait

prefer_passive_omp_wait()  # as the CLI does, before torch is imported

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from depthcli.inference import images_to_batch  # noqa: E402
from depthcli.predict import predict  # noqa: E402
from depthcli.sizes import format_size, parse_size  # noqa: E402
from depthcli.threads import configure_threads  # noqa: E402
from depthcli.weights.release_import import import_to_checkpoint  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import Side, alternate, kitti_sample_root, load_line, machine_line, ratios  # noqa: E402

DRIVE_IMAGES = "2011_09_26/2011_09_26_drive_0000_sync/image_02/data"
MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


def gather_frames(kitti: Path, count: int, folder: Path) -> list[Path]:
    """`count` frame files in `folder`: the real frames, linked under new names as often as needed."""
    real = sorted((kitti / DRIVE_IMAGES).glob("*.png"))
    if not real:
        sys.exit(f"bench_predict: no KITTI frames under {kitti / DRIVE_IMAGES}; pass --kitti DIR")
    folder.mkdir(parents=True)
    frames = []
    for index in range(count):
        link = folder / f"{index:06d}.png"
        link.symlink_to(real[index % len(real)].resolve())
        frames.append(link)
    return frames


def reference_networks(md2, frames: list[Path], size: tuple[int, int], device: torch.device):
    """monodepth2's encoder + decoder, seeded, with BatchNorm statistics from the frames, in eval mode."""
    torch.manual_seed(0)
    encoder = md2.networks.ResnetEncoder(18, False).to(device)
    decoder = md2.networks.DepthDecoder(num_ch_enc=encoder.num_ch_enc, scales=range(4)).to(device)
    encoder.train()
    with torch.no_grad():  # running statistics of real images, as trained weights would have
        for path in frames[:10]:
            encoder(_pil_input(path, size, device))
    return encoder.eval(), decoder.eval()


def export_release(encoder, decoder, size: tuple[int, int], folder: Path) -> Path:
    """The nets as a monodepth2 release folder (encoder.pth with height/width, depth.pth)."""
    folder.mkdir(parents=True)
    torch.save({**encoder.state_dict(), "height": size[1], "width": size[0]}, folder / "encoder.pth")
    torch.save(decoder.state_dict(), folder / "depth.pth")
    return folder


def _pil_input(path: Path, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """test_simple.py's preprocessing: PIL RGB, LANCZOS resize, then torchvision's ToTensor (HWC uint8 ->
    CHW float / 255), here written out in numpy because torchvision is not needed for it."""
    image = PIL.Image.open(path).convert("RGB").resize(size, PIL.Image.LANCZOS)
    return torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float().div(255)[None].to(device)


def test_simple_loop(md2, encoder, decoder, frames: list[Path], out: Path, size, device: torch.device) -> None:
    """The per-image body of monodepth2's test_simple.py (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for path in frames:
            original_width, original_height = PIL.Image.open(path).size
            disp = decoder(encoder(_pil_input(path, size, device)))[("disp", 0)]
            disp_resized = F.interpolate(disp, (original_height, original_width), mode="bilinear", align_corners=False)
            scaled_disp, _ = md2.layers.disp_to_depth(disp, MIN_DEPTH, MAX_DEPTH)
            np.save(out / f"{path.stem}_disp.npy", scaled_disp.cpu().numpy())
            disp_resized_np = disp_resized.squeeze().cpu().numpy()
            vmax = np.percentile(disp_resized_np, 95)
            normalizer = matplotlib.colors.Normalize(vmin=disp_resized_np.min(), vmax=vmax)
            mapper = matplotlib.cm.ScalarMappable(norm=normalizer, cmap="magma")
            colormapped = (mapper.to_rgba(disp_resized_np)[:, :, :3] * 255).astype(np.uint8)
            PIL.Image.fromarray(colormapped).save(out / f"{path.stem}_disp.jpeg")


def timed(function, count: int):
    def run() -> float:
        start = time.perf_counter()
        function()
        return (time.perf_counter() - start) / count

    return run


def compare_networks(encoder, decoder, checkpoint: Path, frame: Path, size, device: torch.device) -> dict[str, float]:
    """Max |sigmoid disparity difference| of depthcli's net (fp32, bf16) vs monodepth2's on one input."""
    from depthcli.data.images import read_rgb
    from depthcli.inference import run_depth_net
    from depthcli.nets.loading import load_depth_model
    from depthcli.precision import autocast_factory

    model = load_depth_model(checkpoint, device=device).net
    image = images_to_batch([read_rgb(frame)], size).to(device)
    with torch.no_grad():
        reference = decoder(encoder(image))[("disp", 0)]
        ours = run_depth_net(model, image, size)
        with autocast_factory("bf16", device)():
            ours_bf16 = run_depth_net(model.to(memory_format=torch.channels_last), image, size)
    return {"fp32": float((ours - reference).abs().max()), "bf16": float((ours_bf16 - reference).abs().max())}


def saved_disparities(folder: Path) -> dict[str, np.ndarray]:
    """Sigmoid disparity per frame from a run's .npy files (both sides save disp_to_depth's scaled disparity)."""
    scaled = {path.name: np.load(path).astype(np.float64).squeeze() for path in sorted(folder.glob("*_disp.npy"))}
    return {name: (disp - 1 / MAX_DEPTH) / (1 / MIN_DEPTH - 1 / MAX_DEPTH) for name, disp in scaled.items()}


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys() and a, "the runs saved different frames"
    return max(float(np.abs(a[name] - b[name]).max()) for name in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="frames per round (real frames repeated)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="0: OMP_NUM_THREADS, else the idle cores")
    parser.add_argument("--kitti", type=Path, default=kitti_sample_root(), help="KITTI raw root")
    parser.add_argument("--monodepth2", default=None, help="folder of the unpacked monodepth2 wheel")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--size", type=parse_size, default=(640, 192), help="network input WxH")
    parser.add_argument("--save", default="jpg,npy", help="what depthcli saves (default: what the loop saves)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--reference", choices=("auto", "on", "off"), default="auto",
                        help="the test_simple.py loop as a side: auto = when monodepth2's code is found")  # fmt: skip
    args = parser.parse_args()
    md2 = _load_reference(args)
    device = torch.device(args.device)
    threads = configure_threads(args.threads) if device.type == "cpu" else 0
    print(f"machine: {machine_line(device)}")
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp = Path(tmp)
        frames = gather_frames(args.kitti, args.frames, tmp / "frames")
        if md2 is not None:
            encoder, decoder = reference_networks(md2, frames, args.size, device)
            release = export_release(encoder, decoder, args.size, tmp / "release")
            checkpoint, _ = import_to_checkpoint("monodepth2", release, tmp / "md2.ckpt")
        else:
            checkpoint = own_checkpoint(frames, args.size, tmp / "md2.ckpt")
        outs = {name: tmp / name for name in ("loop", "fast", "fp32")}

        def ours(amp: str) -> None:
            out = outs["fast" if amp == "auto" else "fp32"]
            shutil.rmtree(out, ignore_errors=True)
            predict([tmp / "frames"], checkpoint, out, batch_size=args.batch_size, workers=args.workers,
                    amp=amp, threads=threads, device=args.device, save=args.save.split(","))  # fmt: skip

        def loop() -> None:
            shutil.rmtree(outs["loop"], ignore_errors=True)
            test_simple_loop(md2, encoder, decoder, frames, outs["loop"], args.size, device)

        sides = [Side("depthcli predict", timed(lambda: ours("auto"), len(frames))),
                 Side("depthcli predict fp32", timed(lambda: ours("off"), len(frames)))]  # fmt: skip
        if md2 is not None:
            sides.insert(0, Side("test_simple.py loop", timed(loop, len(frames))))
        print(f"{args.rounds} rounds x {len(frames)} frames (1242x375 PNG -> {format_size(args.size)}), "
              f"batch {args.batch_size}, {args.workers} workers, {torch.get_num_threads()} threads, "
              f"depthcli saves {args.save}")  # fmt: skip
        alternate(sides, args.rounds)
        fast_disp, fp32_disp = saved_disparities(outs["fast"]), saved_disparities(outs["fp32"])
        differences = {"saved_bf16_vs_fp32": max_difference(fast_disp, fp32_disp)}
        if md2 is not None:
            network = compare_networks(encoder, decoder, checkpoint, frames[0], args.size, device)
            loop_disp = saved_disparities(outs["loop"])
            differences |= {"network_fp32": network["fp32"], "network_bf16": network["bf16"],
                            "saved_fp32_vs_loop": max_difference(fp32_disp, loop_disp)}  # fmt: skip
    print(f"\nload at the end: {load_line()}")
    baseline = sides[0] if md2 is not None else sides[1]
    print(f"{'side':24s} {'s/image':>8s} {'images/s':>9s}  speed-up over {baseline.name} (median of the rounds)")
    rows = []
    for side in sides:
        speedups = ratios(baseline, side) if side is not baseline else []
        rows.append({"side": side.name, "seconds_per_image": side.mean, "images_per_s": 1 / side.mean,
                     "speedup_median": median(speedups or [1.0]), "speedup_rounds": speedups})  # fmt: skip
        rounds = f" (rounds: {', '.join(f'{v:.2f}' for v in speedups)})" if speedups else " (baseline)"
        print(f"{side.name:24s} {side.mean:8.3f} {1 / side.mean:9.2f}  {rows[-1]['speedup_median']:.2f}x{rounds}")
    print("\nmax |sigmoid disparity difference|:")
    print(f"  saved .npy, depthcli bf16 vs depthcli fp32:  {differences['saved_bf16_vs_fp32']:.2e}")
    if md2 is not None:
        print(f"  same input, depthcli net vs monodepth2 net:  fp32 {differences['network_fp32']:.2e}  "
              f"bf16 {differences['network_bf16']:.2e}")  # fmt: skip
        print(f"  saved .npy, depthcli fp32 vs the loop:       {differences['saved_fp32_vs_loop']:.2e} (resize filter)")
    if args.json:
        summary = {"machine": machine_line(device), "batch_size": args.batch_size, "save": args.save, "rows": rows,
                   **differences}  # fmt: skip
        args.json.write_text(json.dumps(summary, indent=2))


def _load_reference(args):
    """monodepth2's modules, or None when they are missing and `--reference auto` (with a note)."""
    from reference import monodepth2_ref

    if args.reference == "off":
        return None
    try:
        return monodepth2_ref.load(args.monodepth2)
    except monodepth2_ref.Monodepth2Missing as exc:
        if args.reference == "on":
            sys.exit(f"bench_predict: {exc}")
        print(f"(no test_simple.py side: {exc})")
        return None


def own_checkpoint(frames: list[Path], size: tuple[int, int], path: Path) -> Path:
    """Without monodepth2's code: depthcli's monodepth2 net, seeded, BatchNorm statistics from the frames."""
    from depthcli.checkpoints import save_checkpoint
    from depthcli.data.images import read_rgb
    from depthcli.nets import build_depth_net

    torch.manual_seed(0)
    model = build_depth_net("monodepth2")
    with torch.no_grad():
        model.encoder(images_to_batch([read_rgb(frame) for frame in frames[:10]], size))
    config = {"net": "monodepth2", "size": list(size), "min_depth": MIN_DEPTH, "max_depth": MAX_DEPTH}
    return save_checkpoint(path, {"kind": "depth", "config": config, "model": model.state_dict()})


if __name__ == "__main__":
    main()
