#!/bin/sh
# sdvk on the CPU vs PyTorch (diffusers, fp32) vs stable-diffusion.cpp, same
# box, same thread count: one CFG UNet step (batch 2) and the VAE decode at
# SIZE x SIZE, as times and ratios.
#
#   bench/bench_cpu_vs.sh --model M.safetensors [--build build] [--size 512]
#       [--threads 2] [--isa avx2] [--weights auto|q8] [--reps 2]
#       [--python PY] [--sdcpp path/to/sd-cli] [--skip-torch]
#
# sdvk: build/bench/bench_stages (best of --reps runs after the first, which
#       prepares the weights).
# PyTorch: bench/torch_sd_step.py with PY (needs torch + diffusers; default
#       python3): diffusers' UNet2DConditionModel / AutoencoderKL in the SD v1.5
#       configuration, fp32, best of --reps after a warm-up.
# stable-diffusion.cpp (only with --sdcpp): its own log's "sampling completed"
#       time of a 1-step generation (cfg 7: both UNet passes of the step) and
#       "decode_first_stage" time, on the same checkpoint; its CPU seconds per
#       step are the difference of the process CPU time of a 2-step and a
#       1-step run.
# Each time is shown as wall seconds and CPU seconds (all threads). On a
# machine shared with other jobs the wall clock counts time spent waiting for
# a core; CPU seconds do not, so the cpu ratio is the robust one.
set -eu
model= build=build size=512 threads=2 isa=avx2 weights=auto reps=2 py=python3 sdcpp= skip_torch=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --isa) isa=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --sdcpp) sdcpp=$2; shift 2 ;;
    --skip-torch) skip_torch=1; shift ;;
    *) echo "bench_cpu_vs.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$model" ] || { echo "bench_cpu_vs.sh: --model is required" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/sdvk_vs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# best (min) wall and cpu of the "run" lines of a bench_stages stage
best() { # file stage-name -> "wall cpu"
  # (the number before "s" and before "cpu-s": the line may end with more, e.g. peak RSS)
  grep "^$2 *run " "$1" | awk '{w=""; c=""; for (i = 2; i <= NF; i++) { if ($i == "s") w = $(i-1); if ($i == "cpu-s") c = $(i-1) }
    if (bw == "" || w + 0 < bw + 0) bw = w; if (bc == "" || c + 0 < bc + 0) bc = c} END {print bw, bc}'
}

echo "== sdvk ($isa, $threads threads, weights $weights), ${size}x${size}"
"$build/bench/bench_stages" "$model" --size "$size" --stages unet,decode --repeat "$reps" \
  --threads "$threads" --isa "$isa" --weights "$weights" | tee "$tmp/sdvk.txt"
set -- $(best "$tmp/sdvk.txt" "unet b2"); s_unet_w=$1 s_unet_c=$2
set -- $(best "$tmp/sdvk.txt" "vae decode"); s_dec_w=$1 s_dec_c=$2

t_unet_w= t_unet_c= t_dec_w= t_dec_c=
if [ "$skip_torch" = 0 ]; then
  echo "== PyTorch ($py, diffusers fp32, $threads threads)"
  if OMP_WAIT_POLICY=PASSIVE "$py" "$here/torch_sd_step.py" --threads "$threads" --size "$size" \
       --reps "$reps" > "$tmp/torch.txt"; then
    cat "$tmp/torch.txt"
    set -- $(grep '^unet_cfg_step' "$tmp/torch.txt"); t_unet_w=$2 t_unet_c=$3
    set -- $(grep '^vae_decode' "$tmp/torch.txt"); t_dec_w=$2 t_dec_c=$3
  else
    echo "(PyTorch run failed: needs torch and diffusers in $py)"
  fi
fi

c_unet_w= c_unet_c= c_dec_w=
if [ -n "$sdcpp" ]; then
  echo "== stable-diffusion.cpp ($sdcpp, $threads threads)"
  for steps in 1 2; do
    /usr/bin/time -f "%U %S" -o "$tmp/sdcpp_time$steps" "$sdcpp" -m "$model" -p "a photo of a cat" \
      --steps "$steps" -W "$size" -H "$size" -t "$threads" --cfg-scale 7 -s 42 \
      -o "$tmp/sdcpp$steps.png" > "$tmp/sdcpp$steps.log" 2>&1 || { echo "(sd.cpp failed, see its log:)"; tail -5 "$tmp/sdcpp$steps.log"; }
  done
  grep -E "sampling completed|decode_first_stage completed" "$tmp/sdcpp1.log" || true
  c_unet_w=$(sed -n 's/.*sampling completed, taking \([0-9.]*\)s.*/\1/p' "$tmp/sdcpp1.log" | head -1)
  c_dec_w=$(sed -n 's/.*decode_first_stage completed, taking \([0-9.]*\)s.*/\1/p' "$tmp/sdcpp1.log" | head -1)
  if [ -s "$tmp/sdcpp_time1" ] && [ -s "$tmp/sdcpp_time2" ]; then
    c_unet_c=$(awk 'NR==FNR {a=$1+$2; next} {print $1+$2-a}' "$tmp/sdcpp_time1" "$tmp/sdcpp_time2")
  fi
fi

ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}' || printf -- "-"; }
echo
echo "== ${size}x${size}, $threads threads: seconds (wall / cpu) and sdvk's time as a fraction of the other's"
printf "%-22s %-20s %-20s %-26s %-20s\n" "stage" "sdvk" "PyTorch" "stable-diffusion.cpp" "sdvk/PyTorch  sdvk/sd.cpp (wall, cpu)"
printf "%-22s %-20s %-20s %-26s %s  %s\n" "CFG UNet step" "$s_unet_w / $s_unet_c" "${t_unet_w:--} / ${t_unet_c:--}" \
  "${c_unet_w:--} / ${c_unet_c:--}" "$(ratio "$s_unet_w" "$t_unet_w"), $(ratio "$s_unet_c" "$t_unet_c")" \
  "$(ratio "$s_unet_w" "$c_unet_w"), $(ratio "$s_unet_c" "$c_unet_c")"
printf "%-22s %-20s %-20s %-26s %s  %s\n" "VAE decode" "$s_dec_w / $s_dec_c" "${t_dec_w:--} / ${t_dec_c:--}" \
  "${c_dec_w:--} / -" "$(ratio "$s_dec_w" "$t_dec_w"), $(ratio "$s_dec_c" "$t_dec_c")" "$(ratio "$s_dec_w" "$c_dec_w"), -"
