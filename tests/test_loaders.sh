#!/bin/sh
# Loaders through the real `sdvk` binary (tests/loaders.cmake).
#
#   test_loaders.sh SDVK TEST_LOADERS VARIANTS TINY CASE
#
# VARIANTS holds what tools/make_test_variants.py wrote (a ctest fixture).
#   stage_<form>   sdvk stage clip / unet / vae-decode / vae-encode on the
#                  tiny model as .safetensors and as <form> (<form>.ckpt or
#                  the diffusers folder): the .npy files must be byte-identical.
#   evil_<name>    a .ckpt whose pickle would run `touch VARIANTS/PWNED`: the
#                  library and the CLI refuse it, naming the global, and the
#                  file is never created.
set -u
SDVK=$1 TL=$2 V=$3 TINY=$4 CASE=$5
WORK=$V/run_$CASE
rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 1
FAILED=0

fail() { echo "FAIL: $*"; FAILED=1; }

# run_stages MODEL TAG: the four stages on MODEL, outputs TAG_*.npy
run_stages() {
    "$SDVK" stage clip --backend cpu -m "$1" --tokens-npy "$TINY/clip_tokens.npy" -o "$2_clip.npy" >/dev/null 2>"$2.err" &&
    "$SDVK" stage unet --backend cpu -m "$1" --latent "$TINY/unet_latent_b2.npy" --timestep 981 \
        --context "$TINY/unet_context_b2.npy" -o "$2_unet.npy" >/dev/null 2>>"$2.err" &&
    "$SDVK" stage vae-decode --backend cpu -m "$1" --latent "$TINY/vae_decode_in.npy" -o "$2_dec.npy" >/dev/null 2>>"$2.err" &&
    "$SDVK" stage vae-encode --backend cpu -m "$1" --image "$TINY/vae_encode_in.npy" -o "$2_enc.npy" >/dev/null 2>>"$2.err" ||
    { fail "stages on $1:"; cat "$2.err"; return 1; }
}

case $CASE in
stage_*)
    form=${CASE#stage_}
    case $form in
    diffusers) M=$V/diffusers ;;
    *) M=$V/$form.ckpt ;;
    esac
    # A .ckpt has no metadata: its reference is the .safetensors without
    # it (the tiny CLIP's head count lives there); diffusers keeps it in
    # text_encoder/config.json.
    REF=$V/tiny_nometa.safetensors
    [ "$form" = diffusers ] && REF=$TINY/model.safetensors
    run_stages "$REF" ref || exit 1
    run_stages "$M" alt || exit 1
    for s in clip unet dec enc; do
        if cmp -s ref_$s.npy alt_$s.npy; then echo "$form: stage $s bit-identical"
        else fail "$form: stage $s output differs from the .safetensors one"; fi
    done ;;
evil_*)
    rm -f "$V/PWNED"
    "$TL" refuse "$V/$CASE.ckpt" "refused" "$V/$CASE.ckpt" "global" || FAILED=1
    "$SDVK" stage vae-decode --backend cpu -m "$V/$CASE.ckpt" --latent "$TINY/vae_decode_in.npy" -o out.npy > out.txt 2>&1
    rc=$?
    [ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "sdvk exit status $rc"
    grep -q "refused" out.txt || { fail "sdvk message:"; cat out.txt; }
    grep -q -e "Sanitizer" -e "runtime error:" out.txt && fail "sanitizer report"
    [ -e out.npy ] && fail "out.npy was written"
    [ -e "$V/PWNED" ] && fail "the pickle's command ran"
    cat out.txt ;;
*) echo "unknown case $CASE"; exit 1 ;;
esac
exit $FAILED
