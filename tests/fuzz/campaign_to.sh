#!/usr/bin/env bash
# Runs tests/fuzz/campaign.sh for TARGET until its log's CPU total reaches
# CPU_MINUTES. The fuzzer runs at nice 19, so on a shared machine its CPU
# share varies: the remainder is re-measured after each run. Gives up after
# 3 runs in a row that stopped on findings (they need a fix first).
#
#   tests/fuzz/campaign_to.sh TARGET CPU_MINUTES
main() {
    set -euo pipefail
    local target=$1 want=$(($2 * 60)) root=${SDVK_FUZZ_ROOT:-/work/fuzz-campaign}
    local i have secs bad=0 last
    cd "$(dirname "$0")/../.."
    for i in $(seq 1 40); do
        have=0
        if [ -f "$root/$target.log" ]; then
            have=$(sed -n 's/.* total target=[a-z]* cpu_s=\([0-9]*\).*/\1/p' "$root/$target.log" | tail -n 1)
            have=${have:-0}
        fi
        [ "$have" -lt "$want" ] || break
        # 10% more wall time than CPU still needed, at least 5 minutes.
        secs=$(((want - have) * 11 / 10))
        [ "$secs" -ge 300 ] || secs=300
        tests/fuzz/campaign.sh "$target" "$secs"
        last=$(grep ' run target=' "$root/$target.log" | tail -n 1)
        case $last in
        *finding=none*) bad=0 ;;
        *) bad=$((bad + 1)) ;;
        esac
        if [ "$bad" -ge 3 ]; then
            echo "campaign_to: $target keeps stopping on findings; fix them first" >&2
            return 1
        fi
    done
}
main "$@"
exit $?
