#!/usr/bin/env bash
# The checks that need a GPU, as one short script for the lent device machine (one `run`, under 10 minutes):
#   here, once:   bash benchmarks/gpu_check.sh --wheels     (downloads the wheels the device lacks into .whl/)
#   there:        bash benchmarks/gpu_check.sh               (run with carry [".whl"]; writes $OUT/gpu.log)
# The device's image has Python 3.12 with torch, transformers, tokenizers, safetensors, scipy, matplotlib and
# opencv; bendlab's other imports travel as wheels. Nothing is fetched there. Each step is time-boxed so the script
# ends well inside the 10-minute limit and every figure already printed comes back in $OUT/gpu.log.
set -u
WHEELS="diffusers==0.42.1 kornia==0.9.0 kornia_rs==0.2.0 librosa==0.11.0 soundfile==0.14.0 soxr==1.1.0
        audioread==3.1.0 pooch==1.9.0 decorator==5.3.2 torchsde==0.2.6 trampoline==0.1.2
        mido==1.3.3"
if [ "${1:-}" = "--wheels" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  for w in $WHEELS; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w" || echo "no wheel for $w (skipped)"
  done
  du -sh .whl; exit 0
fi
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"; LOG=$OUT/gpu.log
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheel install failed" | tee "$LOG"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
step() { echo "== $1" | tee -a "$LOG"; shift; timeout "$@" 2>&1 | tee -a "$LOG"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$LOG"
# time boxes (s): 105 + 45 + 55 + 55 + 70 + 55 + 95 + 55 = 535, with the wheels' install and nvidia-smi under 560
step "pytest -m cuda" 105 python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py
step "shipped model, float16: render, bend, branch" 45 python3 benchmarks/bench.py --device cuda --only render bend branch --repeat 3
step "SD v1.4 architecture, 512 px, 50 steps" 55 python3 benchmarks/bench.py --device cuda --arch sd14 --repeat 2
step "AnimateDiff on SD v1.5's architecture, 16 frames at 512 px, 50 steps" 55 python3 benchmarks/bench.py --device cuda --arch animatediff-sd15 --repeat 1
step "Wan 2.1 1.3B architecture, 33 frames at 480x832, 25 steps" 70 python3 benchmarks/bench.py --device cuda --arch wan-1.3b --repeat 1
step "LTX-Video 0.9 architecture, 121 frames at 512x768, 50 steps" 55 python3 benchmarks/bench.py --device cuda --arch ltx-video --repeat 1
step "SDXL architecture, 1024 px, 50 steps" 95 python3 benchmarks/bench.py --device cuda --arch sdxl --repeat 1 --batch 4
step "Stable Audio Open architecture, 47.55 s stereo at 44.1 kHz, 50 steps" 55 python3 benchmarks/bench.py --device cuda --arch stable-audio-open --repeat 1
echo "== done" | tee -a "$LOG"
