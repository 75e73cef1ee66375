#!/usr/bin/env bash
# losskit GPU checks (written by `cargo xtask gpu-bundle`): runs this bundle's CUDA test executables, the fused
# cross-entropy bench, a small `losskit arena` on the GPU beside the same on the CPU and, when python3 has CUDA
# PyTorch, the torch bench on the same shapes. Writes report.md here
# and copies it, the logs and the bench tables into $OUT when that is set. Exit status 0 only if every check passed.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
mkdir -p logs

# libnvrtc.so.13 comes from the CUDA toolkit or from the nvidia-cuda-nvrtc wheel that PyTorch installs.
nvrtc_dirs=""
# The pairwise losses and the kNN also load libcublas (toolkit lib64 or the nvidia-cublas wheel).
add_dir() { { ls "$1"/libnvrtc.so* || ls "$1"/libcublas.so*; } > /dev/null 2>&1 && nvrtc_dirs="$nvrtc_dirs:$1"; }
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64; do add_dir "$d"; done
if command -v python3 > /dev/null; then
  for d in $(python3 -c '
import glob, site
for p in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(p + "/nvidia/*/lib"):
        print(lib)' 2> /dev/null); do add_dir "$d"; done
fi
nvrtc_dirs="${nvrtc_dirs#:}"
export LD_LIBRARY_PATH="${nvrtc_dirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# On the GPU machine a missing device or NVRTC is a failure, not a skip.
export LOSSKIT_REQUIRE_GPU=1 LOSSKIT_REQUIRE_NVRTC=1
# Every check runs under a time limit (seconds), so that one hung kernel cannot eat a lease.
limit="${LOSSKIT_CHECK_TIMEOUT:-300}"
# pytorch-metric-learning is not on every GPU image: install carried wheels (LOSSKIT_WHEELS, a folder) when given.
if [ -n "${LOSSKIT_WHEELS:-}" ] && ls "$LOSSKIT_WHEELS"/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/losskit-site \
    "$LOSSKIT_WHEELS"/*.whl && export PYTHONPATH="/tmp/losskit-site${PYTHONPATH:+:$PYTHONPATH}"
fi

report="$here/report.md"
failed=0
{
  echo "# losskit GPU report"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | head -n 1)"
  echo "- NVRTC folders: ${nvrtc_dirs:-none found}"
  echo "- Bundle: $(head -n 1 README.txt)"
  echo
} > "$report"

# check NAME COMMAND...: runs the command, keeps its output in logs/NAME.log, records the result and time.
check() {
  local name="$1"
  shift
  local start end rc secs status
  start=$(date +%s.%N)
  timeout -k 10 "$limit" "$@" > "logs/$name.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 0 ]; then status=PASS; else status="FAIL (exit $rc)"; failed=$((failed + 1)); fi
  echo "$name: $status in ${secs} s"
  {
    echo "## $name: $status (${secs} s)"
    echo
    grep -E '^test result:' "logs/$name.log" | sed 's/^/    /'
    skips=$(grep -c 'skipped:' "logs/$name.log")
    if [ "$skips" -gt 0 ]; then echo "    $skips test(s) printed a skip line"; fi
    echo
    echo '```'
    grep -E 'panicked|FAILED|failed|error' "logs/$name.log" | head -n 40
    tail -n 80 "logs/$name.log"
    echo '```'
    echo
  } >> "$report"
}

# Phases to run (comma-separated; all by default): tests, arena, bench. LOSSKIT_GPU_TESTS, when set, is passed to
# the test executables as their name filter (to rerun some tests only).
phases=",${LOSSKIT_GPU_PHASES:-tests,arena,bench},"
phase() { case "$phases" in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
echo "- Phases: ${phases//,/ }" >> "$report"
echo >> "$report"

if phase tests; then
  for t in ./test-*; do
    # The CPU-emulation tests and the NVRTC compile test already run in `cargo xtask test` (CI, no GPU): here only
    # what needs the device.
    check "$(basename "$t")" "$t" ${LOSSKIT_GPU_TESTS:-} --test-threads=1 --nocapture --skip under_cpu_emulation \
      --skip under_emulation --skip every_kernel_compiles_with_nvrtc
  done
fi
if phase arena; then
  # The arena on the embedded wine-quality data, trained on the GPU (--device cuda) and on the CPU with the same
  # seeds: the tables should agree within f32-vs-f64 noise. Three losses (cross-entropy, focal, class-weighted
  # cross-entropy), 3 seeds, 40 epochs; well under 30 s on an H100, NVRTC compilation included.
  arena_args="--losses cross-entropy,focal:gamma=2 --class-weighted --seeds 3"
  check arena-cuda ./losskit arena --device cuda $arena_args --out arena-cuda
  check arena-cpu ./losskit arena --device cpu $arena_args --out arena-cpu
  for d in cuda cpu; do
    if [ -f "arena-$d/arena.md" ]; then
      { echo "### losskit arena --device $d $arena_args"; echo; cat "arena-$d/arena.md"; echo; } >> "$report"
    fi
  done
fi
if phase bench; then
  check ce-bench ./ce_bench --out ce_bench.md
  check pairwise-bench ./pairwise_bench --out pairwise_bench.md
  if python3 -c 'import torch; assert torch.cuda.is_available()' > /dev/null 2>&1; then
    check torch-bench python3 ce_torch.py --out torch_bench.md
    check pairwise-pml-bench python3 pairwise_torch.py --out pairwise_pml_bench.md
    check linear-ce-torch-bench python3 linear_ce_torch.py --out linear_ce_torch_bench.md
  else
    printf '## torch-bench: skipped (no python3 with CUDA PyTorch)\n\n' >> "$report"
  fi
  # After torch's run, so that its table gives the "× torch" column.
  torch_table=""
  [ -f linear_ce_torch_bench.md ] && torch_table="--torch linear_ce_torch_bench.md"
  check linear-ce-bench ./linear_ce_bench --out linear_ce_bench.md $torch_table
fi
for table in ce_bench.md torch_bench.md linear_ce_bench.md linear_ce_torch_bench.md pairwise_bench.md pairwise_pml_bench.md; do
  if [ -f "$table" ]; then
    cat "$table" >> "$report"
    echo >> "$report"
  fi
done
echo "Failed checks: $failed" >> "$report"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  # The device tool returns at most 8 files: the report, and one archive of the logs and tables.
  cp "$report" "$OUT"/
  tar czf "$OUT/gpu-logs.tar.gz" logs $(ls ./*_bench.md 2> /dev/null) $(ls -d arena-cuda arena-cpu 2> /dev/null)
fi
# The failing tests' lines, last, where a caller that keeps only the end of the output sees them.
grep -hE '^test .* FAILED|panicked at' logs/*.log 2> /dev/null | head -n 40
echo "report: $report ($failed failed)"
[ "$failed" -eq 0 ]
