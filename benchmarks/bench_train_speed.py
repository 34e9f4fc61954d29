"""Training step speed, side by side: depthcli's fast setting vs monodepth2's own trainer and vs float32.

    python benchmarks/bench_train_speed.py [--presets monodepth2,diffnet,radepth] [--net NET] [--size 640x192]
        [--batch-size 4] [--rounds 5] [--steps 3] [--threads N] [--compile] [--reference auto|on|off]
        [--monodepth2 DIR] [--device cpu|cuda] [--json OUT]

One training step = forward + losses + backward + Adam on a batch of `--batch-size` samples (three
frames each) at `--size`. Sides, timed in alternating rounds in one process (`sidebyside`):

- "depthcli fast": depthcli's own training loop (`depthcli.engine.trainer.train`, as `depthcli train`
  runs it) with the defaults: `--amp auto` (bf16 on CPUs with AVX-512-BF16/AMX and on bf16 GPUs),
  channels-last, fused Adam. Each round is one `train()` call of `--steps` + 1 steps on an in-memory
  dataset of uint8 samples; the first step of the call is not timed, the rest are timed from step end
  to step end (so batch collation and the move to the device are included).
- "depthcli fast+compile" (with `--compile`): the same with `compile` on, which on CPU compiles the
  float32 photometric loss (on CUDA the nets); the first step's time, which includes compiling, is
  printed before the rounds (a warm-up round runs for every depthcli side).
- "depthcli fp32": the same loop with `amp off`, no channels-last (the float32 baseline per preset).
- "monodepth2 Trainer" (preset monodepth2 only): monodepth2's own `Trainer` (its `monodepth2==1.0.0`
  wheel, see `reference/monodepth2_ref.py`), the body of its `run_epoch`: `process_batch`, zero_grad,
  backward, Adam step, on the same images (no data loading timed on its side), float32 as it ships.

After the rounds, one step of each side runs under torch.profiler and its top operators by self CPU
time are printed. `--device cuda` times the same on a GPU (the reference side runs there too).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from depthcli.threads import prefer_passive_omp_wait

prefer_passive_omp_wait()  # as the CLI does, before torch is imported

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from depthcli.engine.selfsup import SelfSupTask, training_transform  # noqa: E402
from depthcli.engine.trainer import train  # noqa: E402
from depthcli.geometry import intrinsics_from_normalised  # noqa: E402
from depthcli.recipe_configs import SELFSUP  # noqa: E402
from depthcli.sizes import format_size, parse_size  # noqa: E402
from depthcli.threads import configure_threads  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidebyside import Side, alternate, load_line, machine_line, ratios  # noqa: E402

KITTI_K = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
FRAME_IDS = (0, -1, 1)
TOP_OPS = 12


class FixedSamples(Dataset):
    """`length` copies of one sample dict with uint8 frames (the cache's hand-over), through the recipe's
    transform (RA-Depth's scale variants) per access, as the cached dataset does."""

    def __init__(self, frames: dict[int, torch.Tensor], size: tuple[int, int], transform, length: int) -> None:
        self.frames, self.transform, self.length = frames, transform, length
        self.K = intrinsics_from_normalised(KITTI_K, *size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        sample = {("color", f, 0): image for f, image in self.frames.items()}
        sample.update({("color_aug", f, 0): image for f, image in self.frames.items()})
        sample[("K", 0)], sample[("inv_K", 0)], sample["index"] = self.K, torch.linalg.inv(self.K), index
        return self.transform(sample) if self.transform else sample


class DepthcliSide:
    """Rounds of depthcli's training loop; `run()` returns the mean seconds of the timed steps."""

    def __init__(self, preset: str, overrides: dict, frames, args, workdir: Path) -> None:
        base = {"size": args.size, "batch_size": args.batch_size, "max_steps": args.steps + 1, "num_workers": 0,
                "save_every": 0, "log_every": 1000, "threads": args.threads}  # fmt: skip
        self.config = SELFSUP.build_config(preset, overrides={**base, **overrides})
        torch.manual_seed(0)
        self.task = SelfSupTask(self.config)
        self.dataset = FixedSamples(frames, args.size, training_transform(self.config), 4 * args.batch_size)
        self.run_dir, self.device = workdir, args.device

    def _train(self, on_step) -> None:
        train(self.task, self.dataset, self.config, self.run_dir, progress=False, device=self.device, on_step=on_step)

    def run(self) -> tuple[float, float]:
        stamps = [(time.perf_counter(), time.process_time())]
        self._train(lambda *_: stamps.append((time.perf_counter(), time.process_time())))
        self.first_step_s = stamps[1][0] - stamps[0][0]  # set-up and the first step (compiling, with --compile)
        return _per_step(stamps[1], stamps[-1], len(stamps) - 2)

    def profile_step(self) -> profile:
        """Profile the second step of a loop run (the first warms up): the step and the next batch's loading."""
        profiler = profile(activities=_activities(self.device))

        def on_step(step, _losses):
            if step == 1:
                profiler.start()
            elif step == 2:
                profiler.stop()

        self._train(on_step)
        return profiler


class Monodepth2Side:
    """monodepth2's own Trainer step (reference/monodepth2_ref.py); `run()` returns mean seconds per step."""

    def __init__(self, frames, args, workdir: Path) -> None:
        from reference import monodepth2_ref

        self.ref = monodepth2_ref
        md2 = monodepth2_ref.load(args.monodepth2)
        torch.manual_seed(0)
        self.trainer = monodepth2_ref.build_trainer(md2, args.size, args.batch_size, workdir)
        device = torch.device(args.device)
        images = {f: image.float().div(255).repeat(args.batch_size, 1, 1, 1).to(device) for f, image in frames.items()}
        K = intrinsics_from_normalised(KITTI_K, *args.size).repeat(args.batch_size, 1, 1).to(device)
        self.inputs = monodepth2_ref.trainer_inputs(images, K)
        self.steps = args.steps
        self.step()  # warm-up: allocations, Adam state

    def step(self) -> None:
        self.ref.trainer_step(self.trainer, self.inputs)

    def run(self) -> tuple[float, float]:
        start = (time.perf_counter(), time.process_time())
        for _ in range(self.steps):
            self.step()
        return _per_step(start, (time.perf_counter(), time.process_time()), self.steps)

    def profile_step(self) -> profile:
        with profile(activities=_activities(self.trainer.device.type)) as profiler:
            self.step()
        return profiler


def _per_step(start: tuple[float, float], end: tuple[float, float], steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds per step between two (perf_counter, process_time) stamps."""
    return (end[0] - start[0]) / steps, (end[1] - start[1]) / steps


def _activities(device: str) -> list:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])


def print_profile(name: str, profiler: profile, device: str) -> None:
    sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
    print(f"\n-- top {TOP_OPS} operators of one step: {name} --")
    print(profiler.key_averages().table(sort_by=sort, row_limit=TOP_OPS, max_name_column_width=40))


def random_frames(size: tuple[int, int]) -> dict[int, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    width, height = size
    return {f: torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator) for f in FRAME_IDS}


def bench_preset(preset: str, args, workdir: Path) -> list[dict]:
    frames = random_frames(args.size)
    variants = {"depthcli fast": {}, "depthcli fp32": {"amp": "off", "channels_last": False}}
    if args.compile:
        variants["depthcli fast+compile"] = {"compile": True}
    if args.net:
        variants = {name: {**overrides, "net": args.net} for name, overrides in variants.items()}
    runners = {
        name: DepthcliSide(preset, overrides, frames, args, workdir / f"{preset}_{index}")
        for index, (name, overrides) in enumerate(variants.items())
    }
    with_reference = preset == "monodepth2" and args.reference and not args.net
    if with_reference:
        runners["monodepth2 Trainer"] = Monodepth2Side(frames, args, workdir / "monodepth2")
    print(f"{preset}: {args.rounds} rounds x {args.steps} timed steps per side, batch {args.batch_size}, "
          f"{format_size(args.size)}, {torch.get_num_threads()} threads")  # fmt: skip
    for name in variants:  # warm-up round (oneDNN primitive caches; compiling with --compile)
        runners[name].run()
        print(f"  warm-up {name}: first step {runners[name].first_step_s:.1f} s")
    sides = {name: Side(name, runner.run) for name, runner in runners.items()}
    alternate(list(sides.values()), args.rounds)
    if args.profile:
        for name, runner in runners.items():
            print_profile(f"{preset} {name}", runner.profile_step(), args.device)
    baseline = sides["monodepth2 Trainer"] if with_reference else sides["depthcli fp32"]
    comparisons = [(side, baseline) for side in sides.values() if side is not baseline]
    if with_reference:
        comparisons.append((sides["depthcli fast"], sides["depthcli fp32"]))

    def row(side: Side, base: Side) -> dict:
        speedups = ratios(base, side) if side is not base else []
        cpu_speedups = ratios(base, side, cpu=True) if side is not base else []
        return {"preset": preset, "side": side.name, "baseline": base.name, "seconds_per_step": side.mean,
                "samples_per_s": args.batch_size / side.mean, "speedup_median": median(speedups or [1.0]),
                "speedup_rounds": speedups, "cpu_seconds_per_step": median(side.cpu_seconds),
                "cpu_speedup_median": median(cpu_speedups or [1.0])}  # fmt: skip

    rows = [row(side, base) for side, base in comparisons] + [row(baseline, baseline)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="monodepth2,diffnet,radepth")
    parser.add_argument("--size", default="640x192", type=parse_size)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--net", default=None, help="the presets' recipe on another net (e.g. radepth-small)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side and round")
    parser.add_argument("--threads", type=int, default=0, help="0: OMP_NUM_THREADS, else the idle cores")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--monodepth2", default=None, help="folder of the unpacked monodepth2 wheel")
    parser.add_argument("--reference", choices=("auto", "on", "off"), default="auto",
                        help="monodepth2's Trainer as a side: auto = when its code is found")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="add a side with compile on")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    args.threads = configure_threads(args.threads) if args.device == "cpu" else 0
    print(f"machine: {machine_line(torch.device(args.device))}")
    args.reference = args.reference != "off" and "monodepth2" in args.presets.split(",") and _reference_found(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train_speed_") as tmp:
        for preset in args.presets.split(","):
            rows += bench_preset(preset, args, Path(tmp))
    print(f"\nload at the end: {load_line()}")
    print(f"{'preset':11s} {'side':24s} {'s/step':>8s} {'samples/s':>9s} {'CPU s':>7s}  "
          "speed-up over: wall (median and rounds), CPU time (median)")  # fmt: skip
    for row in rows:
        rounds = ", ".join(f"{value:.2f}" for value in row["speedup_rounds"])
        speedup = f"{row['speedup_median']:.2f}x over {row['baseline']}" + (f" (rounds: {rounds})" if rounds else "")
        speedup += f"; CPU {row['cpu_speedup_median']:.2f}x" if rounds else ""
        timing = f"{row['seconds_per_step']:8.3f} {row['samples_per_s']:9.2f} {row['cpu_seconds_per_step']:7.3f}"
        print(f"{row['preset']:11s} {row['side']:24s} {timing}  {speedup}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(torch.device(args.device)), "rows": rows}, indent=2))


def _reference_found(args) -> bool:
    from reference.monodepth2_ref import Monodepth2Missing, load

    try:
        load(args.monodepth2)
        return True
    except Monodepth2Missing as exc:
        if args.reference == "on":
            sys.exit(f"bench_train_speed: {exc}")
        print(f"(no monodepth2 side: {exc})")
        return False


if __name__ == "__main__":
    main()
