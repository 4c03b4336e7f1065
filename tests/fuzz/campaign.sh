#!/usr/bin/env bash
# A fuzzing run of one target, outside CI (tests/fuzz/README.md).
#
#   tests/fuzz/campaign.sh TARGET SECONDS      TARGET: safetensors|image|prompt|npy
#
# Builds the libFuzzer binaries with clang (ASan + UBSan + coverage) in
# build-fuzz/, then runs fuzz_TARGET niced for SECONDS of wall time. The grown
# corpus stays outside the repository in $SDVK_FUZZ_ROOT/corpus/TARGET (default
# root /work/fuzz-campaign); the committed seeds of tests/fuzz/corpus/TARGET
# are read, never written. Crash/leak/timeout inputs go to
# $SDVK_FUZZ_ROOT/artifacts/TARGET/; after one, the run goes on with the time
# left (at most 5 findings per call). Appends one line per fuzzer run (CPU
# time, exec/s, cov, ft, corpus size, finding) and a running CPU total to
# $SDVK_FUZZ_ROOT/TARGET.log; the full fuzzer output goes to
# $SDVK_FUZZ_ROOT/out/TARGET-<date>.txt. A lock file makes concurrent calls
# wait for each other: one fuzzer per slot ($SDVK_FUZZ_SLOT, default 0; use
# one slot per core you can spare), and one build at a time.
# The body is one function, parsed whole before it runs: editing this file
# while a campaign runs cannot change what the running shell executes.
main() {
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 safetensors|image|prompt|npy|ckpt|lora|server_json|base64 SECONDS" >&2
    exit 2
fi
target=$1
secs=$2
case $target in
safetensors) max_len=16384 ;;
image) max_len=32768 ;;
prompt) max_len=8192 ;;
npy) max_len=4096 ;;
ckpt) max_len=32768 ;;
lora) max_len=16384 ;;
server_json) max_len=16384 ;;
base64) max_len=8192 ;;
*) echo "$0: unknown target '$target'" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
src=$(pwd)
root=${SDVK_FUZZ_ROOT:-/work/fuzz-campaign}
mkdir -p "$root/corpus/$target" "$root/artifacts/$target" "$root/out"
log=$root/$target.log

exec 9> "$root/.lock${SDVK_FUZZ_SLOT:-0}"
flock 9
exec 8> "$root/.build-lock"
flock 8

# -O2 -g without -DNDEBUG: assertions (ours and third-party) stay live, so a
# reachable assert is a finding.
nice -n 19 cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" -DSDVK_FUZZ=ON -DSDVK_VULKAN=OFF > /dev/null
nice -n 19 cmake --build build-fuzz -j2 --target "fuzz_$target" > /dev/null
bin=$src/build-fuzz/tests/fuzz_$target
flock -u 8
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")

findings=0
remaining=$secs
while [ "$remaining" -ge 10 ] && [ "$findings" -lt 5 ]; do
    stamp=$(date +%Y%m%d-%H%M%S)
    out=$root/out/$target-$stamp.txt
    timef=$(mktemp)
    t0=$(date +%s)
    rc=0
    # Leaks are findings too (detect_leaks); libFuzzer stops at the first
    # crash, leak, timeout (-timeout s per input) or out-of-memory (a malloc
    # over -rss_limit_mb, or the RSS above it).
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        /usr/bin/time -f "%U %S" -o "$timef" nice -n 19 "$bin" \
        -max_total_time="$remaining" -rss_limit_mb=2048 -timeout=10 -max_len=$max_len \
        -print_final_stats=1 -artifact_prefix="$root/artifacts/$target/" "${dict[@]}" \
        "$root/corpus/$target" "tests/fuzz/corpus/$target" > "$out" 2>&1 || rc=$?
    t1=$(date +%s)
    cpu=$(awk 'NR==1 && NF==2 {printf "%.1f", $1 + $2}' "$timef")
    [ -n "$cpu" ] || cpu=$(tail -n 1 "$timef" | awk '{printf "%.1f", $1 + $2}')
    rm -f "$timef"
    last=$(grep -E '^#[0-9]+' "$out" | grep 'cov:' | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out" | tail -n 1)
    finding=none
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$out" | tail -n 1)
    if [ -n "$art" ] || [ "$rc" -ne 0 ]; then
        what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z-]+|runtime error: .*|fuzz invariant failed: .*' "$out" || true)
        finding="rc=$rc ${what:-unknown} artifact=${art:-none}"
        findings=$((findings + 1))
    fi
    echo "$(date -Is) run target=$target wall_s=$((t1 - t0)) cpu_s=$cpu execs=${execs:-?} exec_per_s=${eps:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} peak_rss_mb=${rss:-?} finding=$finding output=$out" >> "$log"
    total=$(awk '/ run target=/ {for (i = 1; i <= NF; i++) if ($i ~ /^cpu_s=/) {split($i, a, "="); s += a[2]}} END {printf "%.0f", s}' "$log")
    echo "$(date -Is) total target=$target cpu_s=$total cpu_min=$((total / 60))" >> "$log"
    remaining=$((remaining - (t1 - t0)))
    if [ "$finding" = none ]; then break; fi
done
tail -n 2 "$log"
}
main "$@"
exit $?
