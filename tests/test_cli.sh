#!/bin/sh
# Tests of the `sdvk` command line through the real binary (tests/cli.cmake).
#
#   test_cli.sh SDVK CLI_CHECK WORK_ROOT DATA_DIR VOCAB CASE
#
# Each CASE runs the binary and asserts the exit status, that the message
# names the offending option or file, and that nothing crashed (status
# < 128, no sanitizer report). Bad-input cases never need a real model: they
# use a garbage "model" file, which also proves that every check runs
# before the model is opened (otherwise the loader's error would come first).
set -u
SDVK=$1 CHECK=$2 ROOT=$3 DATA=$4 VOCAB=$5 CASE=$6
TINY=$DATA/tiny
ROOT_SRC=$(cd "$DATA/../.." && pwd)

WORK=$ROOT/$CASE
X_PNG=$ROOT/e2e_txt2img/x.png # written by e2e_txt2img (a ctest fixture)
mkdir -p "$WORK" || exit 1
cd "$WORK" || exit 1

printf 'this is not a model, just some text\n' > garbage.bin
# The vocabulary is resolved before the model is opened; give it so the
# checks after it are reached (vocab_none unsets it).
SDVK_VOCAB=$VOCAB
export SDVK_VOCAB
M="-m garbage.bin"
FAILED=0

# expect RC PATTERN... -- COMMAND...
#   RC: the exact exit status. Every PATTERN must occur (fixed string) in the
#   combined stdout+stderr; a PATTERN starting with '!' must not occur.
expect() {
    want=$1; shift
    pats=""
    n_pats=0
    while [ "$1" != "--" ]; do
        n_pats=$((n_pats + 1))
        eval "pat_$n_pats=\$1"
        shift
    done
    shift
    "$@" > out.txt 2>&1
    rc=$?
    ok=1
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: exit status $rc, expected $want"; ok=0
    fi
    if [ "$rc" -ge 128 ]; then
        echo "FAIL: killed by a signal (status $rc)"; ok=0
    fi
    if grep -q -e "Sanitizer" -e "runtime error:" out.txt; then
        echo "FAIL: sanitizer report"; ok=0
    fi
    i=1
    while [ $i -le $n_pats ]; do
        eval "p=\$pat_$i"
        case $p in
        !*) if grep -q -F -e "${p#!}" out.txt; then
                echo "FAIL: output has \"${p#!}\""; ok=0
            fi ;;
        *)  if ! grep -q -F -e "$p" out.txt; then
                echo "FAIL: output lacks \"$p\""; ok=0
            fi ;;
        esac
        i=$((i + 1))
    done
    echo "--- $*  (exit $rc)"
    cat out.txt
    [ $ok -eq 1 ] || FAILED=1
}

case $CASE in
# --- generate: command line --------------------------------------------------
no_args)         expect 2 "Usage:" -- "$SDVK" ;;
help)            expect 0 "Usage:" "--init-img" -- "$SDVK" --help ;;
version)         expect 0 "sdvk " -- "$SDVK" --version ;;
unknown_flag)    expect 2 "unknown option '--bogus'" -- "$SDVK" $M -p x --bogus ;;
missing_value)   expect 2 "option --steps needs a value" -- "$SDVK" $M -p x --steps ;;
stray_arg)       expect 2 "unexpected argument 'cat'" -- "$SDVK" $M -p x cat ;;
# without -m the bundled demo model is used; with none found, -m is asked for
no_model)        expect 2 "-m/--model" -- env SDVK_DEMO_MODEL= "$SDVK" -p x ;;
demo_default)    if [ -f "$ROOT_SRC/models/demo/sdvk-demo.safetensors" ]; then
                     expect 0 "demo model" -- env -u SDVK_VOCAB "$SDVK" -p "a red circle on a blue background" -o demo.png --steps 4
                     "$CHECK" png demo.png 64 64 > /dev/null 2>&1 || { echo "FAIL: demo.png is not a 64x64 PNG"; FAILED=1; }
                 else
                     echo "no demo model in this tree: checking that -m is required"
                     expect 2 "-m/--model" -- "$SDVK" -p x
                 fi ;;
no_prompt)       expect 2 "-p/--prompt" -- "$SDVK" $M ;;
prompt_twice)    expect 2 "both -p/--prompt and prompt words after --" -- "$SDVK" $M -p x -- y ;;
width_mult8)     expect 2 "-W: 100 is not a multiple of 8" -- "$SDVK" $M -p x -W 100 ;;
width_range)     expect 2 "-W: 4104 is out of range" -- "$SDVK" $M -p x -W 4104 ;;
height_small)    expect 2 "--height: 4 is out of range" -- "$SDVK" $M -p x --height 4 ;;
width_junk)      expect 2 "-W: '64px' is not an integer" -- "$SDVK" $M -p x -W 64px ;;
steps_zero)      expect 2 "--steps: 0 is out of range" -- "$SDVK" $M -p x --steps 0 ;;
steps_big)       expect 2 "--steps: 1001 is out of range" -- "$SDVK" $M -p x --steps 1001 ;;
steps_overflow)  expect 2 "--steps: 99999999999999999999 is out of range" -- \
                     "$SDVK" $M -p x --steps 99999999999999999999 ;;
strength_zero)   expect 2 "--strength: 0 is out of range" -- "$SDVK" $M -p x --strength 0 ;;
strength_big)    expect 2 "--strength: 1.5 is out of range" -- "$SDVK" $M -p x --strength 1.5 ;;
cfg_abc)         expect 2 "--cfg-scale: 'abc' is not a number" -- "$SDVK" $M -p x --cfg-scale abc ;;
cfg_nan)         expect 2 "--cfg-scale: 'nan' is not a finite number" -- "$SDVK" $M -p x --cfg-scale nan ;;
cfg_inline)      expect 2 "--cfg-scale: '7.5x' is not a number" -- "$SDVK" $M -p x --cfg-scale=7.5x ;;
seed_junk)       expect 2 "--seed: '12x' is not a non-negative integer" -- "$SDVK" $M -p x --seed 12x ;;
seed_negative)   expect 2 "--seed: '-2' is not a non-negative integer" -- "$SDVK" $M -p x --seed -2 ;;
threads_neg)     expect 2 "--threads: -1 is out of range" -- "$SDVK" $M -p x --threads -1 ;;
backend_unknown) expect 2 "--backend: unknown backend 'cuda'" -- "$SDVK" $M -p x --backend cuda ;;
precision_bad)   expect 2 "--precision: unknown precision 'f8'" -- "$SDVK" $M -p x --precision f8 ;;
vocab_missing)   expect 2 "--vocab: 'no_such_vocab.txt.gz'" -- "$SDVK" $M -p x --vocab no_such_vocab.txt.gz ;;
vocab_none)      unset SDVK_VOCAB
                 expect 2 "--vocab" "no CLIP vocabulary" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x ;;
flag_with_value) expect 2 "option --verbose takes no value" -- "$SDVK" $M -p x --verbose=1 ;;
# --- generate: files ---------------------------------------------------------
model_missing)   expect 2 "-m/--model: 'no_such_model.safetensors'" -- \
                     "$SDVK" -m no_such_model.safetensors -p x ;;
model_dir)       expect 2 "not a diffusers pipeline" -- "$SDVK" -m . -p x --vocab "$VOCAB" ;;
model_garbage)   expect 2 "garbage.bin" "safetensors" -- "$SDVK" $M -p x -W 64 -H 64 -o out.png ;;
init_missing)    expect 2 "-i/--init-img: 'no_such.png'" -- "$SDVK" $M -p x --init-img no_such.png ;;
init_garbage)    expect 2 "-i/--init-img" "garbage.bin" -- "$SDVK" $M -p x --init-img garbage.bin ;;
out_unwritable)  expect 2 "-o/--output" "/nonexistent_dir/x.png" -- "$SDVK" $M -p x -o /nonexistent_dir/x.png ;;
# --- stage -------------------------------------------------------------------
stage_no_args)   expect 2 "Usage: sdvk stage" -- "$SDVK" stage ;;
stage_unknown)   expect 2 "unknown stage 'vae'" -- "$SDVK" stage vae $M -o o.npy ;;
stage_no_output) expect 2 "missing -o/--output" -- "$SDVK" stage vae-decode $M --latent l.npy ;;
stage_missing_latent)
                 expect 2 "--latent: 'no_such.npy'" -- "$SDVK" stage vae-decode $M --latent no_such.npy -o o.npy ;;
stage_garbage_latent)
                 expect 2 "--latent" "garbage.bin" -- "$SDVK" stage vae-decode $M --latent garbage.bin -o o.npy ;;
stage_wrong_rank)
                 "$CHECK" mknpy rank2.npy 4 8 || exit 1
                 expect 2 "--latent: 'rank2.npy' has 2 dimensions; 4 are expected" -- \
                     "$SDVK" stage vae-decode $M --latent rank2.npy -o o.npy ;;
stage_context_rank)
                 "$CHECK" mknpy lat.npy 1 4 8 8 && "$CHECK" mknpy ctx4.npy 1 1 77 16 || exit 1
                 expect 2 "--context: 'ctx4.npy' has 4 dimensions; 3 are expected" -- \
                     "$SDVK" stage unet $M --latent lat.npy --timestep 10 --context ctx4.npy -o o.npy ;;
stage_missing_opt)
                 expect 2 "stage unet: missing --timestep" -- "$SDVK" stage unet $M --latent l.npy --context c.npy -o o.npy ;;
stage_wrong_opt) expect 2 "stage clip does not take --latent" -- "$SDVK" stage clip $M --latent l.npy -o o.npy ;;
stage_bad_token) expect 2 "--tokens item 2: 'abc' is not an integer" -- "$SDVK" stage clip $M --tokens 49406,abc -o o.npy ;;
stage_token_range)
                 expect 2 "--tokens item 1: 49408 is out of range" -- "$SDVK" stage clip $M --tokens 49408 -o o.npy ;;
stage_float_tokens)
                 "$CHECK" mknpy ftok.npy 1 5 || exit 1
                 expect 2 "--tokens-npy: 'ftok.npy' must hold integer token ids" -- \
                     "$SDVK" stage clip $M --tokens-npy ftok.npy -o o.npy ;;
stage_timestep)  expect 2 "--timestep: 1e9 is out of range" -- "$SDVK" stage unet $M --latent l.npy --timestep 1e9 --context c.npy -o o.npy ;;
stage_garbage_model)
                 "$CHECK" mknpy lat.npy 1 4 8 8 || exit 1
                 expect 2 "garbage.bin" -- "$SDVK" stage vae-decode $M --latent lat.npy -o o.npy ;;
selftest_bad)    expect 2 "--backend: unknown backend 'gpu'" -- "$SDVK" selftest --backend gpu ;;
# --- with the tiny model ----------------------------------------------------
e2e_txt2img)
    rm -f x.png
    expect 0 "step 2/2" "wrote x.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 2 --threads 2 -o x.png --vocab "$VOCAB"
    "$CHECK" png x.png 64 64 "a red circle" \
        "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: model, RNG: CPU, Version: sdvk " ||
        FAILED=1 ;;
e2e_repeat)
    # Same seed, same everything: the same bytes.
    expect 0 "wrote x2.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 2 --threads 2 -o x2.png --vocab "$VOCAB"
    cmp "$X_PNG" x2.png || { echo "FAIL: same seed gave a different image"; FAILED=1; } ;;
e2e_img2img)
    # Init image 64x64, output 128x64: exercises the resize; the prompt comes
    # after -- and starts with '-'.
    rm -f y.png
    expect 0 "wrote y.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -n "blurry" --init-img "$X_PNG" \
        --strength 0.5 -W 128 -H 64 --steps 4 --cfg-scale 3 --seed 7 -o y.png --vocab "$VOCAB" \
        -- -a blue square
    "$CHECK" png y.png 128 64 "-a blue square" "Negative prompt: blurry" \
        "Steps: 4, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 3, Seed: 7, Size: 128x64, Model: model, Denoising strength: 0.5, RNG: CPU, Version: sdvk " ||
        FAILED=1 ;;
e2e_random_seed)
    expect 0 "sdvk: seed " "wrote r.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "" -W 64 -H 64 \
        --steps 1 --seed -1 -o r.png --vocab "$VOCAB" ;;
# Stages against the PyTorch goldens of tests/data/tiny (README there).
# Tolerance: relative L2 1e-2 (2e-2 for the CFG sampler loop), ten times the
# model tests' (tests/model.cmake), all on the CPU backend:
# these test the command line plumbing (shapes, row order, options reaching
# the engine), not the numerics; a plumbing mistake gives an error of order 1.
e2e_stage_clip)
    expect 0 -- "$SDVK" stage clip --backend cpu -m "$TINY/model.safetensors" --tokens-npy "$TINY/clip_tokens.npy" -o clip.npy
    "$CHECK" npycmp clip.npy "$TINY/clip_out.npy" 1e-2 || FAILED=1
    # "a photo of a cat" as a list: padded to 77 with 49407 = row 0.
    expect 0 -- "$SDVK" stage clip --backend cpu -m "$TINY/model.safetensors" --tokens 49406,320,1125,539,320,2368,49407 -o clip1.npy
    "$CHECK" npycmp clip1.npy "$TINY/clip_out.npy" 1e-2 0 || FAILED=1 ;;
e2e_stage_unet)
    expect 0 -- "$SDVK" stage unet --backend cpu -m "$TINY/model.safetensors" --latent "$TINY/unet_latent_b1.npy" \
        --timestep 981 --context "$TINY/unet_context_b1.npy" -o unet.npy
    "$CHECK" npycmp unet.npy "$TINY/unet_b1_t981.npy" 1e-2 || FAILED=1 ;;
e2e_stage_vae)
    expect 0 -- "$SDVK" stage vae-decode --backend cpu -m "$TINY/model.safetensors" --latent "$TINY/vae_decode_in.npy" -o dec.npy
    "$CHECK" npycmp dec.npy "$TINY/vae_decode_out.npy" 1e-2 || FAILED=1
    expect 0 -- "$SDVK" stage vae-encode --backend cpu -m "$TINY/model.safetensors" --image "$TINY/vae_encode_in.npy" -o enc.npy
    "$CHECK" npycmp enc.npy "$TINY/vae_encode_out.npy" 1e-2 || FAILED=1 ;;
e2e_stage_sample)
    expect 0 -- "$SDVK" stage sample --backend cpu -m "$TINY/model.safetensors" --context "$TINY/sample_context.npy" \
        --latent "$TINY/sample_x0.npy" --steps 4 --cfg 7.5 --step-noise "$TINY/sample_noise.npy" -o samp.npy
    "$CHECK" npycmp samp.npy "$TINY/sample_out.npy" 2e-2 || FAILED=1 ;;
e2e_stage_bad_shape)
    # A well-formed array of the wrong channel count reaches the engine,
    # which must refuse it (invalid argument: exit 2) with a message.
    "$CHECK" mknpy lat3.npy 1 3 8 8 || exit 1
    expect 2 "stage vae-decode" -- "$SDVK" stage vae-decode --backend cpu -m "$TINY/model.safetensors" --latent lat3.npy -o o.npy ;;
e2e_size_model)
    # 72x40 is a multiple of 8 but gives odd latent sides (9x5): the UNet's
    # down path rounds up and its up path meets each skip's exact size.
    expect 0 "wrote s.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x -W 72 -H 40 --steps 1 \
        -o s.png --vocab "$VOCAB"
    "$CHECK" png s.png 72 40 "x" || FAILED=1 ;;
# --- the rough edges of the resident-engine issue: each failed before ---------
native_size)
    # -m with the demo model: its native 64x64, as without -m (was 512x512)
    expect 0 "wrote n.png (64x64" -- env -u SDVK_VOCAB "$SDVK" --backend cpu -m "$ROOT_SRC/models/demo/sdvk-demo.safetensors" \
        -p "a red circle on a blue background" --steps 2 -o n.png
    "$CHECK" png n.png 64 64 "a red circle on a blue background" || FAILED=1 ;;
model_before_vocab)
    # a broken model is reported before a missing vocabulary, both exit 2
    expect 2 "garbage.bin" "!--vocab" -- env -u SDVK_VOCAB "$SDVK" $M -p x ;;
demo_vocab_env)
    # $SDVK_VOCAB (the 49408-token CLIP vocabulary) must not replace the demo
    # model's own 589-token one
    expect 0 "wrote v.png" -- env SDVK_VOCAB="$VOCAB" "$SDVK" --backend cpu -m "$ROOT_SRC/models/demo/sdvk-demo.safetensors" \
        -p "a red circle on a blue background" --steps 2 -o v.png ;;
size_before_stop)
    # a size only the model can judge is refused before the run starts
    expect 2 "hires width 8192" "!stopped in" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x \
        -W 4096 -H 64 --hires-scale 2 --steps 1 -o h.png --vocab "$VOCAB" ;;
bf16_vulkan)     expect 2 "bf16 is a CPU precision" "!precision 3" -- "$SDVK" --backend vulkan --precision bf16 \
                     -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 1 -o b.png --vocab "$VOCAB" ;;
options_not_apply)
    expect 0 "--precision f16 is a Vulkan precision" "--device 0 chooses a Vulkan device" -- \
        "$SDVK" --backend cpu --precision f16 --device 0 -m "$TINY/model.safetensors" -p x -W 64 -H 64 \
        --steps 1 -o o.png --vocab "$VOCAB" ;;
threads_cap)     expect 0 "using $(nproc) threads" -- "$SDVK" --backend cpu -t 999 -m "$TINY/model.safetensors" \
                     -p x -W 64 -H 64 --steps 1 -o t.png --vocab "$VOCAB" ;;
progress_notty)
    # stderr is a file here: one progress line every few seconds, not one per step
    expect 0 "step 20/20" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 20 \
        -o p.png --vocab "$VOCAB"
    n=$(grep -c "^step " out.txt)
    [ "$n" -le 3 ] || { echo "FAIL: $n progress lines for 20 steps"; FAILED=1; } ;;
verbose_timings)
    expect 0 "text encoder:" "step 1/2 done" "step 2/2 done" "VAE decode 64x64 in" -- "$SDVK" --backend cpu -v \
        -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 2 -o vt.png --vocab "$VOCAB" ;;
verbose_timings_vulkan)
    be=vulkan
    "$SDVK" --list-devices 2>/dev/null | grep -q "^ *[0-9]" ||
        { echo "no Vulkan device here: checking the CPU path instead"; be=cpu; }
    expect 0 "text encoder:" "step 1/2 done" "step 2/2 done" "VAE decode 64x64 in" -- "$SDVK" --backend $be -v \
        -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 2 -o vv.png --vocab "$VOCAB" ;;
stdout_png)
    "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "to stdout" -W 64 -H 64 --steps 1 -o - \
        --vocab "$VOCAB" > so.png 2> err.txt || { cat err.txt; echo "FAIL: -o - exited $?"; FAILED=1; }
    "$CHECK" png so.png 64 64 "to stdout" || FAILED=1 ;;
batch_count)
    rm -f bc.png bc-1.png bc-2.png
    expect 0 "wrote bc-2.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 1 \
        -b 3 --seed 5 -o bc.png --vocab "$VOCAB"
    "$CHECK" png bc.png 64 64 "x" "Steps: 1, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 5," || FAILED=1
    "$CHECK" png bc-1.png 64 64 "x" "Steps: 1, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 6," || FAILED=1
    "$CHECK" png bc-2.png 64 64 "x" "Steps: 1, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 7," || FAILED=1
    cmp -s bc.png bc-1.png && { echo "FAIL: seeds 5 and 6 gave the same picture"; FAILED=1; } ;;
ckpt_message)
    # a PyTorch .ckpt (a zip) is read as one (tests/loaders.cmake loads real ones); a
    # broken one says what is wrong with the zip, not "header length"
    printf 'PK\003\004 this is the start of a zip archive' > broken.bin
    expect 2 "zip" "!header length" -- "$SDVK" -m broken.bin -p x --vocab "$VOCAB" ;;
outpaint)
    # the canvas grows by L,T,R,B around the init picture (64x64 -> 96x80)
    rm -f op.png
    expect 0 "wrote op.png (96x80" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -i "$X_PNG" \
        --outpaint 8,16,24,0 -p "a red circle" --steps 2 --vocab "$VOCAB" -o op.png
    "$CHECK" png op.png 96 80 "a red circle" \
        "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 96x80, Model: model, Denoising strength: 0.75, Outpaint: 8 16 24 0," ||
        FAILED=1 ;;
inpaint_mask)
    # a mask of another size is resized; the infotext records the blur
    "$CHECK" mkmask m.png 17 23 || exit 1
    rm -f ip.png
    expect 0 "wrote ip.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -i "$X_PNG" \
        --mask m.png --mask-blur 3 -p "a red circle" --steps 2 --vocab "$VOCAB" -o ip.png
    "$CHECK" png ip.png 64 64 "a red circle" \
        "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: model, Denoising strength: 0.75, Mask blur: 3," ||
        FAILED=1 ;;
hires)
    # txt2img at 64x64 (2 steps), a second pass at 1.5x (96x96) of int(2 x 0.6) = 1 step
    rm -f hr.png
    expect 0 "wrote hr.png (96x96" "step 3/3" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 2 --hires-scale 1.5 --hires-steps 2 --hires-denoise 0.6 --vocab "$VOCAB" -o hr.png
    "$CHECK" png hr.png 96 96 "a red circle" \
        "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 64x64, Model: model, Denoising strength: 0.6, Hires upscale: 1.5, Hires steps: 2, Hires upscaler: Latent," ||
        FAILED=1
    expect 0 "wrote hl.png (96x96" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 2 --hires-scale 1.5 --hires-upscaler lanczos --vocab "$VOCAB" -o hl.png
    "$CHECK" png hl.png 96 96 "a red circle" || FAILED=1 ;;
preview)
    # a preview file per step (%d) while sampling; the pictures change from
    # step to step, and writing them leaves the picture as it was
    rm -f pv_*.png pv.png np.png
    expect 0 "wrote pv.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 5 --preview pv_%d.png --vocab "$VOCAB" -o pv.png
    expect 0 "wrote np.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 5 --vocab "$VOCAB" -o np.png
    for k in 1 2 3 4; do
        "$CHECK" png pv_$k.png 8 8 > /dev/null 2>&1 || { echo "FAIL: pv_$k.png is not an 8x8 PNG"; FAILED=1; }
    done
    [ -f pv_5.png ] && { echo "FAIL: a preview of the last step (the picture itself)"; FAILED=1; }
    changed=0
    for k in 2 3 4; do cmp -s pv_1.png pv_$k.png || changed=1; done
    [ $changed -eq 1 ] || { echo "FAIL: the previews never change"; FAILED=1; }
    cmp -s pv.png np.png || { echo "FAIL: previews changed the picture"; FAILED=1; } ;;
preview_taesd)
    # TAESD previews at full size every 2 steps into one file; --taesd alone
    # also decodes the picture (not the VAE's), --taesd-preview-only does not
    T=$ROOT_SRC/tests/data/taesd/taesd.safetensors
    rm -f pt.png p1.png p2.png p3.png
    expect 0 "wrote p1.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 4 --taesd "$T" --taesd-preview-only --preview pt.png --preview-every 2 \
        --vocab "$VOCAB" -o p1.png
    "$CHECK" png pt.png 64 64 > /dev/null 2>&1 || { echo "FAIL: pt.png is not a 64x64 PNG"; FAILED=1; }
    expect 0 "wrote p2.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" \
        -W 64 -H 64 --steps 4 --vocab "$VOCAB" -o p2.png
    expect 0 "TAESD decode" "wrote p3.png (64x64" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" \
        -p "a red circle" -W 64 -H 64 --steps 4 --taesd "$T" -v --vocab "$VOCAB" -o p3.png
    cmp -s p1.png p2.png || { echo "FAIL: --taesd-preview-only changed the picture"; FAILED=1; }
    cmp -s p2.png p3.png && { echo "FAIL: --taesd did not decode the picture"; FAILED=1; }
    expect 2 "--taesd" "no_such.safetensors" -- "$SDVK" -m "$TINY/model.safetensors" -p x \
        --taesd no_such.safetensors
    expect 2 "--preview" "only one %d" -- "$SDVK" -m "$TINY/model.safetensors" -p x --preview a%d%d.png
    expect 2 "TAESD" -- "$SDVK" -m "$TINY/model.safetensors" -p x --vocab "$VOCAB" \
        --taesd "$TINY/model.safetensors" ;;
vae_tiling)
    # the VAE in bands of 3 rows gives the picture of the whole VAE; a memory
    # budget too small for anything is a clear error
    rm -f vt.png vw.png
    expect 0 "VAE decode in bands" "wrote vt.png (56x72" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" \
        -p "a red circle" -W 56 -H 72 --steps 2 --vae-tiling on --vae-tile-rows 3 -v --vocab "$VOCAB" -o vt.png
    expect 0 "wrote vw.png (56x72" "!in bands" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" \
        -p "a red circle" -W 56 -H 72 --steps 2 --vae-tiling off -v --vocab "$VOCAB" -o vw.png
    "$CHECK" samepixels vt.png vw.png 1 || FAILED=1
    expect 1 "MiB" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p "a red circle" -W 64 -H 64 \
        --steps 2 --max-memory 1 --vocab "$VOCAB" -o mm.png
    expect 2 "--vae-tiling: unknown mode 'maybe'" -- "$SDVK" $M -p x --vae-tiling maybe ;;
batch_size)
    # two pictures in one UNet batch: seeds s, s+1; the same as one at a time
    rm -f bs.png bs-1.png
    expect 0 "wrote bs-1.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 2 \
        --batch-size 2 --seed 9 -o bs.png --vocab "$VOCAB"
    expect 0 "wrote s10.png" -- "$SDVK" --backend cpu -m "$TINY/model.safetensors" -p x -W 64 -H 64 --steps 2 \
        --seed 10 -o s10.png --vocab "$VOCAB"
    "$CHECK" png bs-1.png 64 64 "x" "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 10, Size: 64x64, Model: model, Batch size: 2, Batch pos: 1," || FAILED=1
    "$CHECK" samepixels bs-1.png s10.png 1 || FAILED=1 ;;
design_link)
    # the README's design link resolves inside the repository
    grep -q '](DESIGN.md)' "$ROOT_SRC/README.md" && [ -f "$ROOT_SRC/DESIGN.md" ] ||
        { echo "FAIL: README does not link DESIGN.md or DESIGN.md is missing"; FAILED=1; }
    ! grep -q '\.\./shared/DESIGN.md' "$ROOT_SRC/README.md" ||
        { echo "FAIL: README still points at ../shared/DESIGN.md"; FAILED=1; } ;;
*) echo "unknown case $CASE"; exit 1 ;;
esac
exit $FAILED
