"""Training steps on a busy CPU: torch's default thread pool vs depthcli's thread choice.

    python benchmarks/bench_threads.py [--busy N] [--rounds 2] [--steps 2] [--preset radepth]
        [--net radepth-small] [--size 192x64] [--batch-size 4] [--timeout 240] [--json OUT]

`--busy` processes (default: one per usable core) spin for the whole run, standing in for the other
jobs of a shared machine. Each side is a fresh process (OpenMP reads its wait policy when torch loads
it) that runs depthcli's training loop (`bench_train_speed.DepthcliSide`, the demo's net and size by
default) for one warm-up step and `--steps` timed steps:

- "torch default": OMP_WAIT_POLICY unset and torch's own thread count (one per physical core), what
  a plain `import torch` program gets;
- "passive wait, all cores": OMP_WAIT_POLICY=PASSIVE (what the CLI sets) with torch's thread count;
- "depthcli": OMP_WAIT_POLICY=PASSIVE and `--threads 0`: the cores other processes leave idle
  (`depthcli.threads.configure_threads`, as `train`, `predict` and `demo` do).

Sides alternate in rounds (`sidebyside`); a side that runs past `--timeout` seconds counts as that
time over its steps, marked ">". Speed-ups are per round, over "torch default".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def child(args) -> None:
    """One side: torch is imported first, so OpenMP keeps the wait policy of this process's environment."""
    import tempfile

    wait_policy = os.environ.get("OMP_WAIT_POLICY", "unset")
    import torch
    from bench_train_speed import DepthcliSide, random_frames  # sets OMP_WAIT_POLICY, too late to matter

    side_args = argparse.Namespace(size=args.size, batch_size=args.batch_size, steps=args.steps,
                                   threads=args.threads, device="cpu")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_threads_") as tmp:
        side = DepthcliSide(args.preset, {"net": args.net}, random_frames(args.size), side_args, Path(tmp))
        wall, cpu = side.run()
    result = {"wall": wall, "cpu": cpu, "threads": torch.get_num_threads(), "wait_policy": wait_policy}
    print("RESULT " + json.dumps(result))


SIDES = {  # name: (OMP_WAIT_POLICY or None for unset, threads: -1 torch's default count, 0 depthcli's choice)
    "torch default": (None, -1),
    "passive wait, all cores": ("PASSIVE", -1),
    "depthcli": ("PASSIVE", 0),
}


def run_side(name: str, args, default_threads: int) -> dict:
    policy, threads = SIDES[name]
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    threads = default_threads if threads < 0 else threads
    command = [sys.executable, __file__, "--child", "--threads", str(threads), "--steps", str(args.steps),
               "--preset", args.preset, "--net", args.net, "--size", args.size_text,
               "--batch-size", str(args.batch_size)]  # fmt: skip
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"wall": args.timeout / (args.steps + 1), "timed_out": True, "threads": threads}
    except subprocess.CalledProcessError as exc:
        sys.exit(f"bench_threads: side {name!r} failed:\n{exc.stderr[-2000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return {**json.loads(line[len("RESULT ") :]), "process_s": time.perf_counter() - start, "timed_out": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=None, help="spinning processes (default: usable cores)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per side and round")
    parser.add_argument("--preset", default="radepth")
    parser.add_argument("--net", default="radepth-small")
    parser.add_argument("--size", default="192x64")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per side and round")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from depthcli.sizes import parse_size

    args.size_text, args.size = args.size, parse_size(args.size)
    if args.child:
        return child(args)

    import torch
    from sidebyside import load_line, machine_line

    from depthcli.threads import usable_cores

    default_threads = torch.get_num_threads()
    busy = usable_cores() if args.busy is None else args.busy
    print(f"machine: {machine_line(torch.device('cpu'))}")
    print(f"{busy} spinning processes; {args.preset} ({args.net}) at {args.size_text}, batch {args.batch_size}, "
          f"{args.rounds} rounds x {args.steps} timed steps per side (after one warm-up step)")  # fmt: skip
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    results: dict[str, list[dict]] = {name: [] for name in SIDES}
    try:
        names = list(SIDES)
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(run_side(name, args, default_threads))
            print(f"  round {round_index + 1}/{args.rounds} ({load_line()}): " + ", ".join(
                f"{name} {_seconds(results[name][-1])} s/step ({results[name][-1]['threads']} threads)"
                for name in names))  # fmt: skip
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    base = results["torch default"]
    print(f"\n{'side':24s} {'s/step (median)':>16s} {'threads':>7s}  speed-up over torch default (rounds)")
    rows = []
    for name, runs in results.items():
        speedups = [b["wall"] / r["wall"] for b, r in zip(base, runs, strict=True)]
        marker = ">" if any(r["timed_out"] for r in runs) else ""
        threads = ",".join(str(r["threads"]) for r in runs)
        print(f"{name:24s} {marker + format(median(r['wall'] for r in runs), '.2f'):>16s} {threads:>7s}  "
              f"{median(speedups):.2f}x ({', '.join(f'{s:.2f}' for s in speedups)})")  # fmt: skip
        rows.append({"side": name, "runs": runs, "speedup_median": median(speedups)})
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(torch.device("cpu")), "busy": busy, "rows": rows}))


def _seconds(run: dict) -> str:
    return (">" if run["timed_out"] else "") + f"{run['wall']:.2f}"


if __name__ == "__main__":
    main()
