#!/bin/sh
# Extra networks through the real `sdvk` binary (tests/extra.cmake).
#
#   test_extra.sh SDVK CLI_CHECK WORK DATA VOCAB CASE [ARGS]
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
set -u
SDVK=$1 CHK=$2 WORK=$3 DATA=$4 VOCAB=$5 CASE=$6
shift 6
TINY=$DATA/tiny
W=$WORK/$CASE${1:+_$1}
rm -rf "$W"
mkdir -p "$W" && cd "$W" || exit 1
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }

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
*) echo "unknown case $CASE"; exit 1 ;;
esac
exit $FAILED
