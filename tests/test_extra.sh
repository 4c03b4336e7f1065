#!/bin/sh
# Extra networks through the real `sdvk` binary (tests/extra.cmake).
#
#   test_extra.sh SDVK CLI_CHECK TEST_LOADERS WORK DATA VOCAB CASE [ARGS]
#
#   golden NAME          the line NAME of DATA/extra/cases.txt (tab-separated:
#                        NAME TOL stage arguments, @TINY @LD @VOCAB standing
#                        for DATA/tiny, DATA/loaders and VOCAB): `sdvk stage
#                        ARGS` on the tiny model, within TOL (relative L2) of
#                        diffusers' output DATA/extra/NAME.npy
#   evil_tag_generate V  a .ckpt LoRA whose pickle would `touch V/PWNED`
#   evil_tag_stage V     (V/evil_system.ckpt, from make_test_variants.py),
#                        named in a prompt's <lora:...> tag: refused with a
#                        message naming the global, exit 1, no output, and
#                        V/PWNED never made
#   convert_ckpt V       `sdvk convert` of V/tiny.ckpt / V/diffusers (from
#   convert_diffusers V  make_test_variants.py): stage outputs bit-identical
#   convert_types        keep / f32 / f16 (in place, round trip) / bf16
#   convert_q8           --type q8 == --weights q8 at load (bit for bit); q8 -> keep / q8 /
#                        f16 / f32 round trips
#   convert_lora         LoRAs merged by convert == applied at run time
#   convert_vae V        --vae merged == --vae at run time
#   convert_bad V        bad inputs refused, nothing left behind
set -u
SDVK=$1 CHK=$2 TL=$3 WORK=$4 DATA=$5 VOCAB=$6 CASE=$7
shift 7
TINY=$DATA/tiny
W=$WORK/$CASE
[ $CASE = golden ] && W=$WORK/golden_$1
rm -rf "$W"
mkdir -p "$W" && cd "$W" || exit 1
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }

# run_stages MODEL TAG [ARGS]: clip / unet / vae-decode / vae-encode of the
# tiny model's inputs on MODEL (with ARGS), outputs TAG_*.npy
run_stages() {
    m=$1 t=$2
    shift 2
    "$SDVK" stage clip --backend cpu -m "$m" --tokens-npy "$TINY/clip_tokens.npy" -o "${t}_clip.npy" "$@" >/dev/null 2>"$t.err" &&
    "$SDVK" stage unet --backend cpu -m "$m" --latent "$TINY/unet_latent_b2.npy" --timestep 981 \
        --context "$TINY/unet_context_b2.npy" -o "${t}_unet.npy" "$@" >/dev/null 2>>"$t.err" &&
    "$SDVK" stage vae-decode --backend cpu -m "$m" --latent "$TINY/vae_decode_in.npy" -o "${t}_dec.npy" "$@" >/dev/null 2>>"$t.err" &&
    "$SDVK" stage vae-encode --backend cpu -m "$m" --image "$TINY/vae_encode_in.npy" -o "${t}_enc.npy" "$@" >/dev/null 2>>"$t.err" ||
    { fail "stages on $m:"; cat "$t.err"; return 1; }
}

case $CASE in
golden)
    NAME=$1
    line=$(grep "^$NAME	" "$DATA/extra/cases.txt") || { echo "no case $NAME"; exit 1; }
    line=$(printf '%s\n' "$line" | sed -e "s|@TINY|$TINY|g" -e "s|@LD|$DATA/loaders|g" -e "s|@VOCAB|$VOCAB|g")
    TAB=$(printf '\t')
    OLDIFS=$IFS
    IFS=$TAB
    set -- $line
    IFS=$OLDIFS
    shift
    TOL=$1
    shift
    echo "sdvk stage $* --backend cpu -m $TINY/model.safetensors -o out.npy"
    "$SDVK" stage "$@" --backend cpu -m "$TINY/model.safetensors" -o out.npy > out.txt 2>&1 ||
        { cat out.txt; fail "sdvk stage failed"; exit 1; }
    "$CHK" npycmp out.npy "$DATA/extra/$NAME.npy" "$TOL" || fail "$NAME: not within $TOL of diffusers"
    ;;
evil_tag_generate|evil_tag_stage)
    V=$1
    rm -f "$V/PWNED"
    mkdir -p loras
    cp "$V/evil_system.ckpt" loras/evil.ckpt
    cp "$DATA/loaders/lora_kohya_r8.safetensors" loras/
    if [ "$CASE" = evil_tag_generate ]; then
        "$SDVK" -m "$TINY/model.safetensors" --vocab "$VOCAB" --backend cpu --lora-model-dir loras \
            -p "<lora:lora_kohya_r8:0.5> a cat <lora:evil:1>" -W 64 -H 64 --steps 1 -o out.png > out.txt 2>&1
    else
        "$SDVK" stage clip -m "$TINY/model.safetensors" --vocab "$VOCAB" --backend cpu --lora-model-dir loras \
            --prompt "a cat <lora:evil:0.7>" -o out.npy > out.txt 2>&1
    fi
    rc=$?
    cat out.txt
    [ $rc -eq 1 ] || [ $rc -eq 2 ] || fail "sdvk exit status $rc (expected 1 or 2)"
    grep -q "refused" out.txt || fail "no refusal message"
    grep -q "evil.ckpt" out.txt || fail "the message does not name the file"
    grep -q "system" out.txt || fail "the message does not name the global"
    grep -q -e "Sanitizer" -e "runtime error:" out.txt && fail "sanitizer report"
    [ -e out.png ] || [ -e out.npy ] && fail "an output was written"
    [ -e "$V/PWNED" ] && fail "the pickle's command ran"
    ;;
convert_ckpt|convert_diffusers)
    # the same model from a .ckpt / a diffusers folder, converted: stage
    # outputs bit-identical to the .safetensors' (a .ckpt has no metadata:
    # its reference is the .safetensors without it)
    V=$1
    if [ $CASE = convert_ckpt ]; then SRC=$V/tiny.ckpt REF=$V/tiny_nometa.safetensors
    else SRC=$V/diffusers REF=$TINY/model.safetensors; fi
    "$SDVK" convert -m "$SRC" -o conv.safetensors || fail "convert $SRC"
    run_stages "$REF" ref && run_stages conv.safetensors conv || exit 1
    for s in clip unet dec enc; do
        cmp -s ref_$s.npy conv_$s.npy && echo "stage $s bit-identical" || fail "stage $s differs"
    done
    "$TL" same "$REF" conv.safetensors || fail "tensors differ" ;;
convert_q8)
    # a q8 file computes what --weights q8 makes at load from the original,
    # bit for bit, and is smaller than the f16 one
    "$SDVK" convert -m "$TINY/model.safetensors" -o q8.safetensors --type q8 || fail "convert q8"
    [ "$(wc -c < q8.safetensors)" -lt "$(wc -c < "$TINY/model.safetensors")" ] || fail "q8 file not smaller"
    run_stages q8.safetensors q8 && run_stages "$TINY/model.safetensors" load --weights q8 || exit 1
    for s in clip unet dec enc; do
        "$CHK" npycmp q8_$s.npy load_$s.npy 0 || fail "$s: q8 file differs from --weights q8"
    done
    # 8-bit stays 8-bit (keep and q8 again give the same tensors and scales)
    "$SDVK" convert -m q8.safetensors -o q8keep.safetensors || fail "q8 -> keep"
    "$TL" same q8.safetensors q8keep.safetensors || fail "q8 -> keep changed tensors"
    "$SDVK" convert -m q8.safetensors -o q8q8.safetensors --type q8 || fail "q8 -> q8"
    "$TL" same q8.safetensors q8q8.safetensors || fail "q8 -> q8 changed tensors"
    # dequantised exactly in f32: the same stages as the q8 file (reference
    # kernels: the SIMD q8 GEMM also quantises activations)
    "$SDVK" convert -m q8.safetensors -o deq32.safetensors --type f32 || fail "q8 -> f32"
    run_stages deq32.safetensors deq32 && SDVK_CPU_ISA=ref run_stages q8.safetensors q8ref || exit 1
    SDVK_CPU_ISA=ref run_stages deq32.safetensors deq32ref || exit 1
    "$CHK" npycmp deq32ref_unet.npy q8ref_unet.npy 1e-5 || fail "q8 -> f32 UNet differs from the q8 file"
    "$CHK" npycmp deq32_unet.npy q8_unet.npy 3e-2 || fail "q8 -> f32 UNet too far from the q8 file"
    "$SDVK" convert -m q8.safetensors -o deq16.safetensors --type f16 || fail "q8 -> f16"
    run_stages deq16.safetensors deq16 || exit 1
    "$CHK" npycmp deq16_unet.npy deq32_unet.npy 1e-2 || fail "q8 -> f16 UNet too far from q8 -> f32"
    ls | grep -q "tmp-" && fail "temporary files left: $(ls | grep tmp-)"
    true ;;
convert_types)
    # keep: the same tensors; in place f16 -> f32 -> f16 gives the file's
    # tensors back; bf16 loads and runs near the f16 result
    "$SDVK" convert -m "$TINY/model.safetensors" -o keep.safetensors || fail "convert keep"
    "$TL" same "$TINY/model.safetensors" keep.safetensors || fail "keep: tensors differ"
    cp "$TINY/model.safetensors" inplace.safetensors
    "$SDVK" convert -m inplace.safetensors -o inplace.safetensors --type f32 || fail "in place f32"
    "$TL" same "$TINY/model.safetensors" inplace.safetensors >/dev/null &&
        fail "f32: still the same bytes as the f16 file?"
    [ "$(wc -c < inplace.safetensors)" -gt "$(wc -c < keep.safetensors)" ] || fail "f32 file not larger"
    "$SDVK" convert -m inplace.safetensors -o inplace.safetensors --type f16 || fail "in place f16"
    "$TL" same "$TINY/model.safetensors" inplace.safetensors || fail "f16 -> f32 -> f16 changed tensors"
    "$SDVK" convert -m "$TINY/model.safetensors" -o bf16.safetensors --type bf16 || fail "convert bf16"
    run_stages "$TINY/model.safetensors" f16 && run_stages bf16.safetensors bf16 || exit 1
    "$CHK" npycmp bf16_unet.npy f16_unet.npy 3e-2 || fail "bf16 UNet too far from f16"
    "$CHK" npycmp bf16_clip.npy f16_clip.npy 3e-2 || fail "bf16 CLIP too far from f16"
    ls | grep -q "tmp-" && fail "temporary files left: $(ls | grep tmp-)"
    true ;;
convert_lora)
    # LoRAs merged by convert == the same LoRAs applied at run time, bit for
    # bit: in float32 files (the engine merges in float32), and on the f16
    # original (its other weights are exact in f32)
    L8=$DATA/loaders/lora_kohya_r8.safetensors L32=$DATA/loaders/lora_kohya_r32.safetensors
    LP=$DATA/loaders/lora_peft_r8.safetensors
    "$SDVK" convert -m "$TINY/model.safetensors" -o base32.safetensors --type f32 || fail "convert f32"
    "$SDVK" convert -m "$TINY/model.safetensors" -o merged32.safetensors --type f32 -v \
        --lora "$L8:0.7" --lora "$L32:-0.5:0.25" --lora "$LP:0.3" || fail "convert with LoRAs"
    run_stages merged32.safetensors merged || exit 1
    run_stages base32.safetensors rt32 --lora "$L8:0.7" --lora "$L32:-0.5:0.25" --lora "$LP:0.3" || exit 1
    run_stages "$TINY/model.safetensors" rt16 --lora "$L8:0.7" --lora "$L32:-0.5:0.25" --lora "$LP:0.3" || exit 1
    run_stages base32.safetensors plain || exit 1
    for s in clip unet; do
        cmp -s merged_$s.npy rt32_$s.npy && echo "stage $s: merged by convert == run-time LoRA (f32 model)" ||
            fail "stage $s: merged by convert differs from the run-time LoRA (f32 model)"
        cmp -s merged_$s.npy rt16_$s.npy && echo "stage $s: merged by convert == run-time LoRA (f16 model)" ||
            fail "stage $s: merged by convert differs from the run-time LoRA (f16 model)"
        cmp -s merged_$s.npy plain_$s.npy && fail "stage $s: the LoRAs changed nothing"
    done
    # stored as f16 (--type keep): rounded, close to the run-time result
    "$SDVK" convert -m "$TINY/model.safetensors" -o merged16.safetensors \
        --lora "$L8:0.7" --lora "$L32:-0.5:0.25" --lora "$LP:0.3" || fail "convert keep with LoRAs"
    run_stages merged16.safetensors m16 || exit 1
    "$CHK" npycmp m16_unet.npy rt16_unet.npy 1e-2 || fail "f16-stored merge too far"
    "$CHK" npycmp m16_clip.npy rt16_clip.npy 1e-2 || fail "f16-stored merge too far"
    grep -q "loras_merged" merged16.safetensors || fail "no sdvk.loras_merged metadata" ;;
convert_vae)
    V=$1
    "$SDVK" convert -m "$TINY/model.safetensors" --vae "$V/vae_diffusers" -o vae.safetensors || fail convert
    "$SDVK" stage vae-decode --backend cpu -m "$TINY/model.safetensors" --vae "$V/vae_diffusers" \
        --latent "$TINY/vae_decode_in.npy" -o ref_dec.npy || fail "stage with --vae"
    "$SDVK" stage vae-decode --backend cpu -m vae.safetensors --latent "$TINY/vae_decode_in.npy" \
        -o conv_dec.npy || fail "stage on the converted file"
    cmp -s ref_dec.npy conv_dec.npy || fail "VAE decode differs from --vae at run time"
    grep -q '"sdvk.vae":"vae_diffusers"' vae.safetensors || fail "no sdvk.vae metadata" ;;
convert_bad)
    # bad inputs: clear messages, exit 2 (1 for failures while running), no
    # output and no temporary file left behind
    V=$1
    rm -f "$V/PWNED"
    bad() { # EXPECTED_RC TEXT ARGS...
        want=$1 text=$2
        shift 2
        "$SDVK" convert "$@" > out.txt 2>&1
        rc=$?
        echo "sdvk convert $*: exit $rc: $(cat out.txt)"
        [ $rc -eq "$want" ] || fail "exit $rc, expected $want"
        grep -q -- "$text" out.txt || fail "message lacks '$text'"
        grep -q -e "Sanitizer" -e "runtime error:" out.txt && fail "sanitizer report"
        [ -e o.safetensors ] && { fail "output written"; rm -f o.safetensors; }
        ls | grep -q "tmp-" && fail "temporary file left"
    }
    bad 2 "missing -m" -o o.safetensors
    bad 2 "missing -o" -m "$TINY/model.safetensors"
    bad 2 "no_such" -m no_such.safetensors -o o.safetensors
    bad 2 "unknown type 'f8'" -m "$TINY/model.safetensors" -o o.safetensors --type f8
    bad 2 "no_dir" -m "$TINY/model.safetensors" -o no_dir/o.safetensors
    bad 2 "--lora" -m "$TINY/model.safetensors" -o o.safetensors --lora missing.safetensors:1
    bad 2 "refused" -m "$V/evil_system.ckpt" -o o.safetensors
    bad 2 "refused" -m "$TINY/model.safetensors" -o o.safetensors --lora "$V/evil_popen.ckpt:1"
    bad 2 "pkl_cut_50" -m "$V/pkl_cut_50.ckpt" -o o.safetensors
    printf 'not a model at all' > garbage.safetensors
    bad 2 "garbage.safetensors" -m garbage.safetensors -o o.safetensors
    bad 2 "--vae" -m "$TINY/model.safetensors" -o o.safetensors --vae nothing_here
    bad 2 "unknown option" -m "$TINY/model.safetensors" -o o.safetensors --frobnicate
    [ -e "$V/PWNED" ] && fail "a pickle's command ran"
    true ;;
*) echo "unknown case $CASE"; exit 1 ;;
esac
exit $FAILED
