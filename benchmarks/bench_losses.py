"""Forward+backward time and peak memory of the fused Triton photometric kernel vs the PyTorch reference.

Mirrors the trainer's use at batch 12 with 3 source frames:
  * "error"   - one photometric_error call on the stacked (batch*sources, 3, H, W) warped images;
  * "trainer" - per source: the reprojection error of the warped image (requires grad) and the
                identity error of the unwarped source, then automasked min-reprojection and the mean.
A last line per size times min_reprojection_loss alone: the most a fused min/automask kernel could save.
Target on an H100: kernel >= 3x faster and <= 1/2 the peak memory of the reference.

Usage: python benchmarks/bench_losses.py [--warmup 5] [--iters 20] [--sizes 640x192,1024x320] [--json OUT]
Without CUDA it exits with status 2; `--interpret-check` then runs a tiny CPU check of the kernel
through triton's interpreter instead, and `--device cpu` runs the timing code on CPU as a smoke test
(the reference only, unless triton's interpreter is on; peak memory is not measured there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from depthcli.losses.photometric import _kernel_runs_on, min_reprojection_loss, photometric_error


def parse_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


Step = Callable[[bool], None]


def error_step(batch: int, sources: int, width: int, height: int, device: str) -> tuple[Step, list[torch.Tensor]]:
    warped = torch.rand(batch * sources, 3, height, width, device=device, requires_grad=True)
    target = torch.rand(batch * sources, 3, height, width, device=device)

    def step(use_kernel: bool) -> None:
        photometric_error(warped, target, use_kernel=use_kernel).mean().backward()

    return step, [warped]


def trainer_step(batch: int, sources: int, width: int, height: int, device: str) -> tuple[Step, list[torch.Tensor]]:
    target = torch.rand(batch, 3, height, width, device=device)
    unwarped = [torch.rand(batch, 3, height, width, device=device) for _ in range(sources)]
    warped = [torch.rand(batch, 3, height, width, device=device, requires_grad=True) for _ in range(sources)]
    generator = torch.Generator(device=device).manual_seed(0)

    def step(use_kernel: bool) -> None:
        reprojection = torch.cat([photometric_error(w, target, use_kernel=use_kernel) for w in warped], 1)
        with torch.no_grad():
            identity = torch.cat([photometric_error(u, target, use_kernel=use_kernel) for u in unwarped], 1)
        loss_map, _ = min_reprojection_loss(reprojection, identity, generator=generator)
        loss_map.mean().backward()

    return step, warped


def measure(step: Step, leaves: list[torch.Tensor], use_kernel: bool, warmup: int, iters: int) -> tuple[float, float]:
    """(milliseconds per forward+backward, peak MiB allocated above the inputs; NaN on CPU).

    Gradients of the leaves are dropped before each step, so the peak includes allocating them.
    """

    def fresh_step() -> None:
        for leaf in leaves:
            leaf.grad = None
        step(use_kernel)

    for _ in range(warmup):
        fresh_step()
    for leaf in leaves:
        leaf.grad = None
    if not leaves[0].is_cuda:
        start = time.perf_counter()
        for _ in range(iters):
            fresh_step()
        return 1000 * (time.perf_counter() - start) / iters, float("nan")
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fresh_step()
    end.record()
    torch.cuda.synchronize()
    peak_mib = (torch.cuda.max_memory_allocated() - baseline) / 2**20
    return start.elapsed_time(end) / iters, peak_mib


def time_min_reprojection(batch: int, sources: int, width: int, height: int, warmup: int, iters: int, device: str):
    """Milliseconds of automasked min-reprojection alone: what a fused min/automask kernel could save at most."""
    reprojection = torch.rand(batch, sources, height, width, device=device, requires_grad=True)
    identity = torch.rand(batch, sources, height, width, device=device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step(use_kernel: bool) -> None:
        min_reprojection_loss(reprojection, identity, generator=generator)[0].mean().backward()

    return measure(step, [reprojection], False, warmup, iters)[0]


def run_benchmark(args: argparse.Namespace) -> list[dict]:
    device = args.device
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke run: timings have no meaning here)"
    print(f"device: {name}  batch {args.batch}, {args.sources} sources, warmup {args.warmup}, iters {args.iters}")
    header = (
        f"{'size':>9} {'case':>8} {'ref ms':>8} {'kernel ms':>9} {'speedup':>7} "
        f"{'ref MiB':>8} {'kernel MiB':>10} {'mem ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    with_kernel = _kernel_runs_on(torch.empty(0, device=device))
    rows = []
    for size in args.sizes.split(","):
        width, height = parse_size(size)
        for case, build in (("error", error_step), ("trainer", trainer_step)):
            step, leaves = build(args.batch, args.sources, width, height, device)
            ref_ms, ref_mib = measure(step, leaves, False, args.warmup, args.iters)
            ker_ms, ker_mib = measure(step, leaves, True, args.warmup, args.iters) if with_kernel else (ref_ms, ref_mib)
            on_gpu = device == "cuda"  # no peak memory on CPU: None in the JSON
            kernel = {"kernel_ms": ker_ms, "kernel_mib": ker_mib if on_gpu else None} if with_kernel else {}
            row = {"size": size, "case": case, "reference_ms": ref_ms, "reference_mib": ref_mib if on_gpu else None}
            rows.append(row | kernel)
            print(
                f"{size:>9} {case:>8} {ref_ms:8.2f} {ker_ms:9.2f} {ref_ms / ker_ms:6.2f}x "
                f"{ref_mib:8.0f} {ker_mib:10.0f} {ker_mib / ref_mib:9.2f}"
            )
            if case == "trainer":
                trainer_kernel_ms = ker_ms
            del step, leaves
            if device == "cuda":
                torch.cuda.empty_cache()
        minrep_ms = time_min_reprojection(args.batch, args.sources, width, height, args.warmup, args.iters, device)
        share = 100 * minrep_ms / trainer_kernel_ms
        print(f"{size:>9} min_reprojection_loss alone (reference, fwd+bwd): {minrep_ms:.3f} ms = "
              f"{share:.1f}% of the kernel trainer step (upper bound for fusing it)")  # fmt: skip
    if not with_kernel:
        print("(no kernel here: the kernel columns repeat the reference)")
    return rows


def interpret_check() -> None:
    """Tiny kernel-vs-reference comparison on CPU through triton's interpreter (no timing meaning)."""
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first import of triton
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 7, 9, generator=gen, requires_grad=True)
    target = torch.rand(2, 3, 7, 9, generator=gen)
    started = time.perf_counter()
    outputs, grads = [], []
    for use_kernel in (True, False):
        pred.grad = None
        out = photometric_error(pred, target, use_kernel=use_kernel)
        out.sum().backward()
        outputs.append(out.detach())
        grads.append(pred.grad.clone())
    out_diff = (outputs[0] - outputs[1]).abs().max().item()
    grad_diff = (grads[0] - grads[1]).abs().max().item()
    print(f"interpreter check (2,3,7,9): max |out diff| {out_diff:.2e}, max |grad diff| {grad_diff:.2e}, "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    if max(out_diff, grad_diff) > 1e-4:
        sys.exit("interpreter check FAILED: kernel and reference disagree beyond 1e-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations per case (default 5)")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per case (default 20)")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--sources", type=int, default=3)
    parser.add_argument("--sizes", default="640x192,1024x320", help="comma-separated WxH (default 640x192,1024x320)")
    parser.add_argument("--interpret-check", action="store_true", help="without CUDA: tiny CPU interpreter check")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None, help="cpu: smoke-run the timing code")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_losses: --device cuda but no CUDA device is available")
    if args.device is not None:
        rows = run_benchmark(args)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
    elif args.interpret_check:
        interpret_check()
    else:
        print(
            "bench_losses: no CUDA device here; this benchmark times the Triton kernel on a GPU. "
            "Run it on a CUDA machine, or pass --interpret-check for a tiny CPU correctness check.",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
