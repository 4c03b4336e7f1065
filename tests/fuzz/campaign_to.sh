#!/usr/bin/env bash
# Runs tests/fuzz/campaign.sh for TARGET until its log's CPU total reaches
# CPU_MINUTES (the wall time a run needs depends on what else the machine
# runs, so the remainder is re-measured after each run).
#
#   tests/fuzz/campaign_to.sh TARGET CPU_MINUTES
main() {
    set -euo pipefail
    local target=$1 want=$(($2 * 60)) root=${SDVK_FUZZ_ROOT:-/work/fuzz-campaign} i have
    cd "$(dirname "$0")/../.."
    for i in 1 2 3 4 5 6 7 8; do
        have=0
        if [ -f "$root/$target.log" ]; then
            have=$(sed -n 's/.* total target=[a-z]* cpu_s=\([0-9]*\).*/\1/p' "$root/$target.log" | tail -n 1)
            have=${have:-0}
        fi
        [ "$have" -lt "$want" ] || break
        # 10% more wall time than CPU still needed, at least 2 minutes.
        local secs=$(((want - have) * 11 / 10))
        [ "$secs" -ge 120 ] || secs=120
        tests/fuzz/campaign.sh "$target" "$secs"
    done
}
main "$@"
exit $?
