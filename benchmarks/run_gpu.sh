#!/usr/bin/env bash
# depthcli's CUDA numbers in one table: the photometric loss kernel against the PyTorch reference
# (time and peak memory), training throughput per preset at 640x192 batch 12 (fast setting = bf16
# autocast + channels-last, with and without torch.compile, against float32; monodepth2's own
# trainer too when its code is found), and `depthcli predict` images/s at batch 64 in bf16.
#
#   benchmarks/run_gpu.sh                  # on a CUDA machine, from anywhere in the repo
#   benchmarks/run_gpu.sh --device cpu     # smoke run of the same Python code on CPU, tiny sizes
#                                          # (exercises the code paths; the numbers mean nothing)
#
# Needs the repo installed (pip install -e .). monodepth2's sides (its Trainer, its test_simple.py
# loop) run when its code is importable: MONODEPTH2_DIR=<unpacked monodepth2==1.0.0 wheel>, or
# `pip install --no-deps monodepth2==1.0.0`. The KITTI frames for inference are the repo's real sample
# (tests/data/kitti_raw_mini; KITTI=<raw root> for others). Results: a temporary folder of JSON files,
# printed as one table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
if [[ "${1:-}" == "--device" ]]; then
    device="${2:?--device takes cuda or cpu}"
fi
kitti="${KITTI:-tests/data/kitti_raw_mini}"
out="$(mktemp -d -t depthcli_gpu_XXXXXX)"

if [[ "$device" == cuda ]]; then
    losses=(--sizes 640x192,1024x320 --batch 12 --warmup 5 --iters 20)
    train=(--size 640x192 --batch-size 12 --rounds 3 --steps 10 --compile)
    infer=(--frames 512 --batch-size 64 --rounds 2 --workers 8)
else
    losses=(--sizes 64x32 --batch 2 --warmup 1 --iters 1)
    train=(--size 128x64 --batch-size 2 --rounds 1 --steps 1 --no-profile --presets monodepth2,radepth)
    infer=(--frames 4 --batch-size 2 --rounds 1 --workers 1 --size 128x64)
fi

echo "== loss kernel"
python benchmarks/bench_losses.py --device "$device" "${losses[@]}" --json "$out/losses.json"
echo "== training throughput"
python benchmarks/bench_train_speed.py --device "$device" "${train[@]}" --json "$out/train.json"
echo "== inference"
python benchmarks/bench_predict.py --device "$device" --kitti "$kitti" "${infer[@]}" --json "$out/predict.json"
echo "== summary ($out)"
python benchmarks/gpu_table.py "$out"
