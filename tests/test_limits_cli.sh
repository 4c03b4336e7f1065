#!/bin/sh
# The `sdvk` binary on hostile inputs (issue 19): each must fail fast (< 1 s,
# < 100 MB RSS, measured by run_measured) with a message naming the limit or
# the problem, and never crash. Inputs are the committed regression files of
# tests/fuzz/crashes.
#
#   test_limits_cli.sh SDVK RUN_MEASURED FUZZ_DIR VOCAB TINY_MODEL WORK CASE
set -u
SDVK=$1 RUN=$2 FUZZ=$3 VOCAB=$4 TINY=$5 WORK=$6 CASE=$7
IMG=$FUZZ/crashes/image
ST=$FUZZ/crashes/safetensors
mkdir -p "$WORK/$CASE" && cd "$WORK/$CASE" || exit 1
printf 'this is not a model, just some text\n' > garbage.bin
SDVK_VOCAB=$VOCAB
export SDVK_VOCAB
FAILED=0

# expect RC PATTERN... -- COMMAND...: exit status RC, every PATTERN in the
# output, within 1 s and 100 MB, no signal, no sanitizer report.
expect() {
    want=$1; shift
    n=0
    while [ "$1" != "--" ]; do n=$((n + 1)); eval "pat_$n=\$1"; shift; done
    shift
    "$RUN" 1.0 100 "$@" > out.txt 2>&1
    rc=$?
    echo "--- $*  (exit $rc)"
    cat out.txt
    [ "$rc" -eq "$want" ] || { echo "FAIL: exit status $rc, expected $want"; FAILED=1; }
    [ "$rc" -ne 125 ] || { echo "FAIL: too slow or too much memory"; FAILED=1; }
    if grep -q -e "Sanitizer" -e "runtime error:" out.txt; then echo "FAIL: sanitizer report"; FAILED=1; fi
    i=1
    while [ $i -le $n ]; do
        eval "p=\$pat_$i"
        grep -q -F -e "$p" out.txt || { echo "FAIL: output lacks \"$p\""; FAILED=1; }
        i=$((i + 1))
    done
}

M="-m garbage.bin"
case $CASE in
init_huge_png)      expect 2 "-i/--init-img" "100000x100000" "limit of 16384 pixels per side" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-png-100000x100000-header.png" ;;
init_64k_png)       expect 2 "-i/--init-img" "16384x16384" "limit of 67108864 pixels" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-png-16384x16384-header.png" ;;
init_huge_jpeg)     expect 2 "-i/--init-img" "65500x65500" "limit" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-jpeg-65500x65500-header.jpg" ;;
init_truncated_jpeg) expect 2 "-i/--init-img" "truncated" "Premature end of JPEG file" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-jpeg-truncated.jpg" ;;
init_pgm16)         expect 2 "-i/--init-img" "PNM" "not supported" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-pgm16-4096x4096-header.pgm" ;;
init_png16)         expect 2 "-i/--init-img" "16-bit PNG" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-png16-8x8.png" ;;
init_bad_huffman)   expect 2 "-i/--init-img" "Huffman" -- \
                        "$SDVK" $M -p x -i "$IMG/issue19-jpeg-huffman-count-over-256.jpg" ;;
stage_huge_png)     expect 2 "--image" "limit of 16384 pixels per side" -- \
                        "$SDVK" stage vae-encode $M --image "$IMG/issue19-png-100000x100000-header.png" -o o.npy ;;
model_2e40)         expect 2 "issue19-shape-2e40x2e40.safetensors" "more than 2^63 elements" "limit" -- \
                        "$SDVK" -m "$ST/issue19-shape-2e40x2e40.safetensors" -p x -W 64 -H 64 -o out.png ;;
model_zero_dim)     expect 2 "UNet model channels is 0" "limit 1..16384" -- \
                        "$SDVK" -m "$ST/issue19-unet-zero-channels.safetensors" -p x -W 64 -H 64 -o out.png ;;
model_intmin)       expect 2 "VAE channels is 4294967295" "limit 32..16384" -- \
                        "$SDVK" -m "$ST/issue19-vae-encoder-intmin-by-minus1.safetensors" -p x -W 64 -H 64 -o out.png ;;
prompt_100k)        # 100 kB of '(' (the A1111 parser is quadratic in brackets): refused by
                    # SD_PROMPT_MAX_BYTES before parsing, after the model is opened.
                    P=$(head -c 100000 /dev/zero | tr '\0' '(')
                    expect 2 "prompt too long: 100000 bytes" "limit" -- \
                        "$SDVK" -m "$TINY" --backend cpu -p "$P" -W 64 -H 64 -o out.png ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
exit $FAILED
