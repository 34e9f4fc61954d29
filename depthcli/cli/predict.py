"""`depthcli predict`: colour-mapped disparity, raw disparity and metric depth for images and videos.

depthcli.predict (torch, cv2) is imported inside the command, so that `depthcli --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from depthcli.sizes import parse_size

_KIND_NAMES = {
    "png": "colour-mapped disparity PNGs",
    "jpg": "colour-mapped disparity JPEGs",
    "npy": "scaled disparity .npy",
    "depth16": "16-bit depth PNGs",
}


def predict_command(
    inputs: list[str] = typer.Argument(
        ..., metavar="INPUT...", help="Image files, folders, globs (quoted) or video files (.mp4, .avi, ...)."
    ),
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="depthcli depth checkpoint (.ckpt)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; names mirror the inputs' names."),
    size: str | None = typer.Option(
        None, "--size", help="Network input WxH (multiples of 32); default: the checkpoint's training size."
    ),
    save: str | None = typer.Option(
        None,
        "--save",
        help="Comma list of png (colour disparity at input size), jpg (the same as a JPEG, as monodepth2's "
        "test_simple.py writes it: ~30x faster to encode), npy (monodepth2's scaled disparity "
        "1/max_depth..1/min_depth at network size, as its test_simple.py saves; `depthcli eval --predictions "
        "FOLDER` scores these), depth16 (metric depth PNG, metres x 256). Default: png,npy, plus depth16 with "
        "--scale-factor.",
    ),
    colormap: str = typer.Option("magma", "--colormap", help="matplotlib colormap for the colour pictures."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: str = typer.Option(
        "auto",
        "--amp",
        help="Network precision: auto (bf16 where the CPU/GPU does it natively; disparities within 1e-2 of "
        "float32), bf16, off (float32: exactly what `depthcli eval` computes).",
    ),
    workers: int = typer.Option(2, "--workers", min=0, help="Processes decoding the images (0: none)."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: OMP_NUM_THREADS, else idle cores)."),
    image_resize: str = typer.Option(
        "torch",
        "--image-resize",
        help="torch (bilinear, antialiased) or pil-lanczos (PIL Lanczos on the 8-bit image, as monodepth2's "
        "test_simple.py: reproduces released weights' outputs from full-size frames).",
    ),
    scale_factor: float | None = typer.Option(
        None,
        "--scale-factor",
        help="Metric scale for depth16: depth in metres = F x depth from disp_to_depth (min/max depth of the "
        "checkpoint). Monocular nets predict depth only up to scale: take F from e.g. the median GT/pred "
        "ratio of `depthcli eval` (stereo-trained monodepth2: 5.4).",
    ),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Look into subfolders of folder inputs."),
    every: int = typer.Option(1, "--every", min=1, help="For videos: predict every N-th frame only."),
    split: str | None = typer.Option(
        None,
        "--split",
        help="KITTI: predict a split's frames (file or shipped name, e.g. eigen) under the one INPUT root; outputs "
        "keep DATE/DRIVE/image_02/data/ so that `depthcli eval --predictions OUT --split ...` finds them.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that already exist."),
) -> None:
    """Predict depth for images, folders, globs and videos with a trained checkpoint.

    Per image: NAME_disp.png (colour-mapped, at the input's size) and NAME_disp.npy (monodepth2's scaled
    disparity at network size; score a split's with `depthcli eval --predictions OUT`).

    With --scale-factor also NAME_depth.png (uint16, metres x 256). Video frames: VIDEO/000123_*.

    Unreadable inputs are listed at the end; the exit status is then 1.
    """
    from depthcli.predict import OUTPUT_SUFFIXES, parse_save, predict

    console = Console()
    network_size = parse_size(size) if size is not None else None
    kinds = parse_save(save, scale_factor)
    progress = Progress(
        TextColumn("[bold]predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )
    task = None

    def on_start(total: int) -> None:
        nonlocal task
        console.print(f"predicting {total} input(s) into [bold]{escape(str(out))}[/]", soft_wrap=True)
        task = progress.add_task("predict", total=total)
        progress.start()

    def on_progress(count: int) -> None:
        progress.advance(task, count)

    try:
        result = predict(
            inputs,
            checkpoint,
            out,
            size=network_size,
            save=kinds,
            colormap=colormap,
            batch_size=batch_size,
            device=device,
            scale_factor=scale_factor,
            recursive=recursive,
            every=every,
            overwrite=overwrite,
            image_resize=image_resize,
            split=split,
            workers=workers,
            amp=amp,
            threads=threads,
            on_start=on_start,
            on_progress=on_progress,
        )
    finally:
        if task is not None:
            progress.stop()
    console.print(
        f"predicted {result.frames_done} image(s) into [bold]{escape(str(result.out_dir))}[/]", soft_wrap=True
    )
    for kind, paths in result.written.items():
        if paths:
            console.print(
                f"  {len(paths)} {_KIND_NAMES[kind]} (*{OUTPUT_SUFFIXES[kind]}), e.g. {escape(str(paths[0]))}",
                soft_wrap=True,
            )
    if result.failures:
        console.print(f"[bold red]{len(result.failures)} input(s) failed and were skipped:[/]")
        for label, reason in result.failures:
            console.print(f"  {escape(label)}: {escape(reason)}", soft_wrap=True)
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
