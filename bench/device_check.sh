#!/usr/bin/env bash
# sdvk on a real GPU, in one command (issue 16): correctness and speed of the
# Vulkan backend next to the CPU backend and PyTorch/diffusers on the same card.
#
#   bash bench/device_check.sh --prepare [--glslang DIR]
#       On the development machine: builds a release sdvk in build-device/
#       (DIR: a folder with glslang(Validator), spirv-val and spirv-opt new
#       enough for GL_KHR_cooperative_matrix, e.g. the LunarG SDK's bin/; without
#       it only the NV cooperative-matrix shaders are built) and stages in
#       .device/ (git-ignored) what the GPU machine lacks: the binaries and
#       their shared libraries, libvulkan1 and the Khronos validation layer
#       (Debian packages unpacked with dpkg -x), the CLIP vocabulary, and the
#       diffusers + importlib_metadata wheels (torch is there).
#   Then, with the device tool, in the checkout that has .device/:
#       run(command="bash bench/device_check.sh", carry=[".device"], timeout_s=600)
#   bash bench/device_check.sh
#       The check (on the GPU machine; about 5 minutes): lists the device;
#       sdvk selftest --validation in f32 and f16; makes a random full-size SD
#       v1.5 fp16 checkpoint (tools/make_model.py, in the background meanwhile);
#       one UNet eval (batch 2, 64x64 latent, t = 981) on Vulkan f32 / f16,
#       the CPU backend and PyTorch fp32 on the GPU, compared; a 512x512
#       20-step CFG 7.5 generation cold and warm (pipeline cache); per-op
#       TFLOP/s (bench_vulkan --sd); peak GPU memory; the same generation in
#       diffusers fp16 + SDPA, eager and with CUDA graphs. Writes
#       $OUT/summary.md (one table) and $OUT/log.txt.
#   bash bench/device_check.sh --dry-run
#       The same steps here on lavapipe at small sizes (64x64, 2 steps, an
#       8x8 UNet eval, a subset of selftest ops, small bench shapes), with
#       PyTorch on the CPU ($SDVK_TORCH_PY, default the tools venv) for the
#       UNet reference and no torch timings. Uses build/ (or --build DIR).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEV=$ROOT/.device
MODE=run
GLSLANG_DIR=
BUILD=
while [ $# -gt 0 ]; do
    case "$1" in
    --prepare) MODE=prepare ;;
    --dry-run) MODE=dry ;;
    --glslang) GLSLANG_DIR=$2; shift ;;
    --build) BUILD=$2; shift ;;
    -h | --help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "device_check: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

# ---------------------------------------------------------------- prepare --
if [ $MODE = prepare ]; then
    set -e
    B=$ROOT/build-device
    extra=()
    if [ -n "$GLSLANG_DIR" ]; then
        g=$GLSLANG_DIR/glslangValidator
        [ -x "$g" ] || g=$GLSLANG_DIR/glslang
        extra+=(-DSDVK_GLSLANG="$g" -DSDVK_SPIRV_VAL="$GLSLANG_DIR/spirv-val" -DSDVK_SPIRV_OPT="$GLSLANG_DIR/spirv-opt")
    fi
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DSDVK_VULKAN_REQUIRED=ON -DSDVK_TESTS=OFF \
        "${extra[@]}" | grep -E "sdvk|Vulkan" || true
    cmake --build "$B" -j"$(nproc)" --target sdvk_cli bench_vulkan >/dev/null
    rm -rf "$DEV"
    mkdir -p "$DEV/bin" "$DEV/lib" "$DEV/vk" "$DEV/whl"
    cp "$B/sdvk" "$B/bench/bench_vulkan" "$DEV/bin/"
    strip "$DEV/bin/"* 2>/dev/null || true
    # shared libraries the GPU machine's image may lack (jansson, libpng,
    # libjpeg-turbo, libmicrohttpd and theirs): all but glibc's own, which
    # the image has in a newer version
    for l in $(ldd "$B/sdvk" "$B/bench/bench_vulkan" | awk '/=>/ {print $3}' | sort -u |
        grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+)\.so'); do
        cp -L "$l" "$DEV/lib/"
    done
    # libvulkan1 and the validation layer: Debian packages, unpacked here
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download libvulkan1 vulkan-validationlayers >/dev/null)
    for f in "$tmp"/*.deb; do dpkg -x "$f" "$DEV/vk"; done
    rm -rf "$tmp" "$DEV/vk/usr/share/doc" "$DEV/vk/usr/share/lintian"
    vocab=${SDVK_VOCAB:-$ROOT/../shared/clip/bpe_simple_vocab_16e6.txt.gz}
    cp "$vocab" "$DEV/"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$DEV/whl" \
        diffusers==0.42.1 importlib_metadata==10.2.0
    {
        echo "sdvk $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +changes)"
        grep -E "^SDVK_GLSL_COOPMAT|^SDVK_GLSLANG:" "$B/CMakeCache.txt"
        ls "$B/shaders/" | grep -E '^mm_.*\.spv$' | tr '\n' ' '
        echo
    } >"$DEV/MANIFEST"
    du -sh "$DEV"
    cat "$DEV/MANIFEST"
    echo "staged; now: run(command=\"bash bench/device_check.sh\", carry=[\".device\"], timeout_s=600)"
    exit 0
fi

# ------------------------------------------------------------ run / dry-run --
T_START=$(date +%s)
OUTDIR=${OUT:-$ROOT/device_out}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/log.txt
SUM=$OUTDIR/summary.md
: >"$LOG"
W=${TMPDIR:-/tmp}/sdvk_device
mkdir -p "$W"
log() { echo "[$(($(date +%s) - T_START))s] $*" | tee -a "$LOG"; }
now() { date +%s.%N; }
# runs a command with a time limit, output to the log; sets DT (seconds), RC,
# and L0 (the log's line count before it: seg prints the command's output)
run() {
    local lim=$(($1 * TSCALE))
    shift
    L0=$(wc -l <"$LOG")
    echo "\$ $*" >>"$LOG"
    local t0
    t0=$(now)
    timeout "$lim" "$@" >>"$LOG" 2>&1
    RC=$?
    DT=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
    [ $RC = 124 ] && echo "(timed out after $lim s)" >>"$LOG"
    return 0
}
seg() { tail -n +$((L0 + 1)) "$LOG"; }
row() { echo "| $1 | $2 | $3 |" >>"$SUM"; }

if [ $MODE = dry ]; then
    B=${BUILD:-$ROOT/build}
    SDVK=$B/sdvk
    BENCH=$B/bench/bench_vulkan
    VOCAB=${SDVK_VOCAB:-$ROOT/../shared/clip/bpe_simple_vocab_16e6.txt.gz}
    PY=${SDVK_TORCH_PY:-$ROOT/tools/.venv/bin/python}
    [ -x "$PY" ] || PY=
    TORCH_DEV=cpu
    NPY=${PY:-/usr/bin/python3}  # numpy (the plain python3 here may lack it)
    export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
    SIZE=64 STEPS=2 LAT=8 BENCH_SD= NICE="nice"
    # lavapipe runs the full-size UNet on the CPU, slower still on a busy
    # machine: limits sized for a GPU, times this
    TSCALE=${SDVK_DRY_TIMEOUT_SCALE:-8}
    export SDVK_CONFORMANCE_OPS=${SDVK_CONFORMANCE_OPS:-matmul,conv2d,geglu,group_norm,layer_norm}
    MODEL=$W/full_f16.safetensors
    [ -f /tmp/sdvk_full/full_f16.safetensors ] && MODEL=/tmp/sdvk_full/full_f16.safetensors
else
    # the carried libraries for our binaries only (Python and torch keep the
    # image's own libffi, libz, ...): small wrappers that set the path
    mkdir -p "$W/bin"
    LIBP=$DEV/lib:$DEV/vk/usr/lib/x86_64-linux-gnu
    for b in sdvk bench_vulkan; do
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
            "$LIBP" "$DEV/bin/$b" >"$W/bin/$b"
        chmod +x "$W/bin/$b"
    done
    SDVK=$W/bin/sdvk
    BENCH=$W/bin/bench_vulkan
    VOCAB=$(ls "$DEV"/bpe_simple_vocab_16e6.txt.gz 2>/dev/null)
    PY=python3
    TORCH_DEV=cuda
    NPY=python3
    SIZE=512 STEPS=20 LAT=64 BENCH_SD=--sd NICE=
    TSCALE=1
    MODEL=$W/full_f16.safetensors
    export VK_LAYER_PATH=$DEV/vk/usr/share/vulkan/explicit_layer.d
    if [ -d "$DEV/whl" ] && ls "$DEV"/whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$W/site" "$DEV"/whl/*.whl >>"$LOG" 2>&1 && export PYTHONPATH=$W/site${PYTHONPATH:+:$PYTHONPATH}
    fi
fi
export XDG_CACHE_HOME=$W/cache
rm -rf "$XDG_CACHE_HOME"

{
    echo "# sdvk device check ($([ $MODE = dry ] && echo "dry run on lavapipe" || echo "GPU run"))"
    echo
    echo "$(date -u +%F\ %T) UTC, $(if [ -f "$DEV/MANIFEST" ]; then head -1 "$DEV/MANIFEST"; else echo "sdvk $(git -C "$ROOT" rev-parse --short HEAD)"; fi)"
    echo
    echo "| check | result | detail |"
    echo "| --- | --- | --- |"
} >"$SUM"

# 1. the device ----------------------------------------------------------------
log "devices"
run 60 "$SDVK" --list-devices
if [ $MODE = run ] && ! grep -qi nvidia "$LOG"; then
    # the image's loader may not find the NVIDIA ICD by itself (device README)
    for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
        /etc/vulkan/icd.d/nvidia_icd.json; do
        [ -f "$f" ] && export VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f && break
    done
    log "no NVIDIA device listed; VK_DRIVER_FILES=${VK_DRIVER_FILES:-none found}"
    run 60 "$SDVK" --list-devices
fi
DEVNAME=$(grep -E '^[0-9]+: ' "$LOG" | grep -v CPU | head -1 | sed 's/^[0-9]*: //')
[ -z "$DEVNAME" ] && DEVNAME=$(grep -E '^[0-9]+: ' "$LOG" | head -1 | sed 's/^[0-9]*: //')
KERN=$(grep -m1 'kernels (f16)' "$LOG" | sed 's/^ *kernels (f16): //')
row "device" "${DEVNAME:-none}" "${KERN:-}"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$LOG" 2>&1
fi
# fp16 tensor peak of the card, for the per-op table (dense, fp32 accumulate)
PEAK=0
case "$DEVNAME" in
*H100*PCIe*) PEAK=756 ;;
*H100* | *H200* | *H800*) PEAK=989 ;;
*A100*) PEAK=312 ;;
*L40S*) PEAK=362 ;;
*4090*) PEAK=165 ;;
esac

# 2. the checkpoint, in the background while the selftests run ------------------
MK_PID=
if [ ! -f "$MODEL" ]; then
    log "making $MODEL (tools/make_model.py --config full --dtype f16) in the background"
    "$NPY" "$ROOT/tools/make_model.py" --config full --dtype f16 -o "$MODEL" >"$W/make_model.log" 2>&1 &
    MK_PID=$!
fi

# 3. selftest with validation ------------------------------------------------------
# Debian 12's validation layer (1.3.239) predates VK_KHR_cooperative_matrix:
# a build with KHR shaders runs the validated selftests on the NV ones and
# the KHR ones in a selftest of their own without the layer.
HAS_KHR=$(grep -c 'mm_cm_khr' "$DEV/MANIFEST" 2>/dev/null)
VAL_KERNELS=
[ "${HAS_KHR:-0}" != 0 ] && [ -z "${SDVK_VK_KERNELS:-}" ] && VAL_KERNELS=coopmat_nv
for p in f32 f16; do
    log "selftest $p${VAL_KERNELS:+ (SDVK_VK_KERNELS=$VAL_KERNELS)}"
    SDVK_VK_KERNELS=${VAL_KERNELS:-${SDVK_VK_KERNELS:-}} run 240 $NICE "$SDVK" selftest --backend vulkan --precision $p --validation
    npass=$(seg | grep -c ' PASS$')
    nfail=$(seg | grep -c ' FAIL')
    nval=$(seg | grep -c 'validation error')
    row "selftest $p, validation on" "$([ $RC = 0 ] && [ "$nval" = 0 ] && echo PASS || echo FAIL)" \
        "$npass passed, $nfail failed, $nval validation messages, rc $RC, ${DT%.*} s"
done

if [ "${HAS_KHR:-0}" != 0 ]; then
    log "selftest f16, KHR cooperative matrices, no validation layer"
    SDVK_VK_KERNELS=coopmat_khr run 240 $NICE "$SDVK" selftest --backend vulkan --precision f16
    row "selftest f16 coopmat_khr (no layer)" "$([ $RC = 0 ] && echo PASS || echo FAIL)" \
        "$(seg | grep -c ' PASS$') passed, $(seg | grep -c ' FAIL') failed, rc $RC"
fi

if [ -n "$MK_PID" ]; then
    wait "$MK_PID"
    cat "$W/make_model.log" >>"$LOG"
    log "checkpoint ready"
fi
if [ ! -f "$MODEL" ]; then
    row "checkpoint" "FAIL" "no $MODEL"
    log "no checkpoint: stopping"
    exit 1
fi

# 4. one UNet eval, batch 2, t = 981, every backend --------------------------------------
log "UNet eval inputs (batch 2, ${LAT}x${LAT} latent)"
"$NPY" - "$W" "$LAT" <<'EOF'
import sys, numpy as np
w, s = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(16)
np.save(w + "/lat.npy", r.standard_normal((2, 4, s, s)).astype(np.float32))
np.save(w + "/ctx.npy", r.standard_normal((2, 77, 768)).astype(np.float32))
EOF
U="stage unet -m $MODEL --latent $W/lat.npy --timestep 981 --context $W/ctx.npy"
declare -A UT
for b in "vulkan f32" "vulkan f16" "cpu auto"; do
    set -- $b
    log "UNet eval on $1 $2"
    run 300 $NICE "$SDVK" $U --backend $1 --precision $2 -v -o "$W/unet_$1_$2.npy"
    UT["$1_$2"]=$([ $RC = 0 ] && echo "$DT s" || echo "rc $RC")
done
if [ -n "$PY" ]; then
    log "UNet eval in PyTorch fp32 on $TORCH_DEV (diffusers, same weights)"
    run 300 $NICE "$PY" "$ROOT/bench/device_torch.py" unet --model "$MODEL" --latent "$W/lat.npy" --timestep 981 \
        --context "$W/ctx.npy" --device $TORCH_DEV -o "$W/unet_torch.npy"
    UT[torch]=$([ $RC = 0 ] && echo "$DT s" || echo "rc $RC")
fi
"$NPY" - "$W" >>"$SUM" 2>>"$LOG" <<'EOF'
import os, sys, numpy as np
w = sys.argv[1]
def ld(n):
    p = "%s/unet_%s.npy" % (w, n)
    return np.load(p).astype(np.float64) if os.path.exists(p) else None
def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))
cpu, t = ld("cpu_auto"), ld("torch")
for name, lim in (("vulkan_f32", 1e-4), ("vulkan_f16", 2e-2)):
    v = ld(name)
    if v is None or cpu is None:
        print("| UNet eval %s vs CPU backend | FAIL | no output |" % name)
        continue
    e = rel(v, cpu)
    et = " ; vs PyTorch fp32: %.2e" % rel(v, t) if t is not None else ""
    ok = e <= lim and np.isfinite(v).all()
    print("| UNet eval %s vs CPU backend (limit %g) | %s | rel L2 %.2e%s |" % (name.replace("_", " "), lim,
          "PASS" if ok else "FAIL", e, et))
if cpu is not None and t is not None:
    print("| UNet eval CPU backend vs PyTorch fp32 (weights conversion check) | %s | rel L2 %.2e |" % (
          "PASS" if rel(cpu, t) <= 1e-4 else "FAIL", rel(cpu, t)))
EOF
row "UNet eval times (load + run)" "" "vulkan f32 ${UT[vulkan_f32]:-}, f16 ${UT[vulkan_f16]:-}, cpu ${UT[cpu_auto]:-}, torch ${UT[torch]:--}"

# 5. generation, cold and warm --------------------------------------------------------
GEN=(-m "$MODEL" --vocab "$VOCAB" -p "a photo of a cat" -n "blurry" --steps $STEPS --cfg-scale 7.5
    -W $SIZE -H $SIZE --seed 42 --backend vulkan --precision f16 -v)
SMI_PID=
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$W/smi.txt" 2>/dev/null &
    SMI_PID=$!
fi
GT=() GRC=()
# cold: an empty pipeline cache of its own (the steps above filled $XDG_CACHE_HOME),
# and NVIDIA's own shader disk cache off for both runs, so warm = sdvk's cache
rm -rf "$W/cache_gen"
for c in 0 1; do
    log "generation ${SIZE}x${SIZE}, $STEPS steps, CFG 7.5, $([ $c = 0 ] && echo cold || echo warm) pipeline cache"
    XDG_CACHE_HOME=$W/cache_gen __GL_SHADER_DISK_CACHE=0 run 300 $NICE "$SDVK" "${GEN[@]}" -o "$OUTDIR/sdvk_${SIZE}.png"
    GT[$c]=$DT GRC[$c]=$RC
done
[ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null
# the warm run's UNet loop: one submit of all steps ("run steps 0..N-1")
MSSTEP=$(seg | grep -E "vulkan: run steps 0\.\.$((STEPS - 1)):" | tail -1 |
    sed -E 's/.*GPU ([0-9.]+) ms\/step.*wall ([0-9.]+) ms.*/\1 \2/')
set -- $MSSTEP
GPU_MS=${1:-0} WALL_MS=${2:-0}
ITS=$(awk -v w="$WALL_MS" -v n="$STEPS" 'BEGIN {printf "%.2f", (w > 0 ? 1000 * n / w : 0)}')
PEAKMEM=-
[ -s "$W/smi.txt" ] && PEAKMEM="$(sort -n "$W/smi.txt" | tail -1) MiB (device total, nvidia-smi)"
IMGOK=$(python3 - "$OUTDIR/sdvk_${SIZE}.png" 2>>"$LOG" <<'EOF'
import sys, zlib, struct
# PNG decode without PIL: the pixels exist and are not one flat colour
d = open(sys.argv[1], "rb").read()
i, idat, w = 8, b"", 0
while i < len(d):
    n, t = struct.unpack(">I4s", d[i:i + 8])
    if t == b"IHDR":
        w = struct.unpack(">I", d[i + 8:i + 12])[0]
    if t == b"IDAT":
        idat += d[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
print("ok" if len(set(raw[1:1 + 3 * w])) > 1 or len(set(raw)) > 2 else "flat")
EOF
)
row "generation ${SIZE}x${SIZE} $STEPS steps CFG 7.5 (sdvk Vulkan f16)" \
    "$([ "${GRC[0]}" = 0 ] && [ "${GRC[1]}" = 0 ] && [ "$IMGOK" = ok ] && echo PASS || echo FAIL)" \
    "cold ${GT[0]} s, warm ${GT[1]} s per image (whole process: load, CLIP, UNet, VAE, PNG); UNet loop $ITS it/s (wall $WALL_MS ms for $STEPS steps, GPU ${GPU_MS} ms/step); image $IMGOK"
row "peak GPU memory (sdvk generation)" "" "$PEAKMEM"

# 6. per-op throughput ---------------------------------------------------------------------
BL0=$(wc -l <"$LOG")
for k in auto simt128; do
    log "bench_vulkan $BENCH_SD f16, kernels $k"
    if [ $k = auto ]; then
        run 180 $NICE "$BENCH" $BENCH_SD --precision f16 --reps 5 --no-cpu --peak $PEAK
    else
        SDVK_VK_KERNELS=$k run 180 $NICE "$BENCH" $BENCH_SD --precision f16 --reps 5 --no-cpu --peak $PEAK
    fi
done
{
    echo
    echo "Per-op (bench_vulkan $BENCH_SD, f16 storage; % of the card's ${PEAK} TFLOP/s fp16 tensor peak):"
    echo
    echo '```'
    tail -n +$((BL0 + 1)) "$LOG" | grep -E '^(bench_vulkan:|op |ff |attn |conv|self |cross |group|layer)'
    echo '```'
} >>"$SUM"

# 7. the same generation in PyTorch ---------------------------------------------------------
if [ $MODE = run ] && [ -n "$PY" ]; then
    log "diffusers fp16 + SDPA, eager and CUDA graphs"
    run 300 "$PY" "$ROOT/bench/device_torch.py" gen --model "$MODEL" --size $SIZE --steps $STEPS --cfg 7.5 \
        --device cuda --modes eager,graph --json "$W/torch_gen.json"
    python3 - "$W/torch_gen.json" "$ITS" >>"$SUM" 2>>"$LOG" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
sd = float(sys.argv[2] or 0)
for m, x in r.items():
    print("| PyTorch %s (diffusers %s, %s) | %.2f it/s | %.2f s per image (UNet loop + VAE, no CLIP), %.2f ms/step, "
          "peak %.2f GiB; sdvk/this = %.2fx it/s |" % (m, x["dtype"], x["attention"], x["it_per_s"], x["s_per_image"],
          x["ms_per_step"], x["peak_mem_gib"] or 0, sd / x["it_per_s"] if x["it_per_s"] else 0))
EOF
fi

# 8. where the time goes: per-node GPU timestamps of one UNet eval (f16)
log "profile: one UNet eval, f16, SDVK_VK_PROFILE=1"
SDVK_VK_PROFILE=1 run 120 $NICE "$SDVK" $U --backend vulkan --precision f16 -v -o "$W/unet_prof.npy"
{
    echo
    echo "Slowest nodes of one UNet eval (Vulkan f16, SDVK_VK_PROFILE=1):"
    echo
    echo '```'
    seg | grep -E 'vulkan:   node|kernels recorded|GPU [0-9.]+ ms/step' | head -16
    echo '```'
    echo
    echo "Total $(($(date +%s) - T_START)) s. Full log: log.txt."
} >>"$SUM"
log "done"
cat "$SUM"
