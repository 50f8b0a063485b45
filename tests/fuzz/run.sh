#!/usr/bin/env bash
# run.sh - builds and runs the libFuzzer targets of tests/fuzz/ (clang).
#
#   tests/fuzz/run.sh build                  configure + build (build/fuzz)
#   tests/fuzz/run.sh replay [TARGET...]     run every corpus input once (CI)
#   tests/fuzz/run.sh fuzz TARGET SECONDS [libFuzzer flags...]
#   tests/fuzz/run.sh merge TARGET           add the inputs of the last fuzz run
#                                            that bring new coverage to the corpus
#   tests/fuzz/run.sh gen                    rewrite the generated seeds
#
# Targets: fuzz_frame fuzz_batch fuzz_filter fuzz_recovery fuzz_http fuzz_kinesis
# fuzz_sqs fuzz_auth fuzz_sigv4 fuzz_console fuzz_jsonflat fuzz_push fuzz_sns fuzz_member
# fuzz_eventbridge fuzz_transform fuzz_cluster_state fuzz_layout fuzz_repl fuzz_meta
# fuzz_epochs fuzz_pview fuzz_control. The build dir is
# $SLUICE_FUZZ_BUILD (default build/fuzz). Exit 77 = skipped: clang or
# libFuzzer (Debian: clang, libclang-rt-14-dev) is not installed.
# Corpus files named known-* reproduce open bugs (tests/fuzz/README.md): replay
# skips them unless SLUICE_FUZZ_KNOWN=1; drop the prefix once the bug is fixed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
B="${SLUICE_FUZZ_BUILD:-$ROOT/build/fuzz}"
TARGETS=(fuzz_frame fuzz_batch fuzz_filter fuzz_recovery fuzz_http fuzz_kinesis fuzz_sqs fuzz_auth fuzz_sigv4 fuzz_console fuzz_jsonflat fuzz_push fuzz_sns fuzz_eventbridge fuzz_transform fuzz_member)
CC_FUZZ="${SLUICE_FUZZ_CC:-clang}"
TARGETS+=(fuzz_cluster_state) # cluster mode's shard state decoder (#14)
TARGETS+=(fuzz_layout) # libsluice's routing table from a described layout (#16)
TARGETS+=(fuzz_repl) # the replication messages between brokers (#14)
TARGETS+=(fuzz_meta) # stream.meta: settings, properties, the shard lineage (#16)
TARGETS+=(fuzz_epochs) # a replica's leader-epochs file (#14)
TARGETS+=(fuzz_pview) # the native in-place Produce parser vs protobuf-c (#12)
TARGETS+=(fuzz_control) # a replicated control batch's checkpoints (#14)

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

max_len() {
    case "$1" in
    fuzz_cluster_state) echo 512 ;;
    fuzz_layout) echo 8192 ;;
    fuzz_repl) echo 8192 ;;
    fuzz_meta) echo 16384 ;;
    fuzz_frame) echo 16384 ;;
    fuzz_batch) echo 16384 ;;
    fuzz_filter) echo 4200 ;;
    fuzz_recovery) echo 32768 ;;
    fuzz_http) echo 16384 ;;
    fuzz_kinesis) echo 8192 ;;
    fuzz_sqs) echo 8192 ;;
    fuzz_auth) echo 4096 ;;
    fuzz_sigv4) echo 4096 ;;
    fuzz_console) echo 4096 ;;
    fuzz_push) echo 8192 ;;
    fuzz_sns) echo 8192 ;;
    fuzz_jsonflat) echo 8192 ;;
    fuzz_eventbridge) echo 8192 ;;
    fuzz_transform) echo 8192 ;;
    fuzz_member) echo 2048 ;;
    fuzz_epochs) echo 3200 ;;
    fuzz_pview) echo 16384 ;;
    fuzz_control) echo 8193 ;;
    *) echo "run.sh: unknown target $1" >&2; exit 2 ;;
    esac
}

have_libfuzzer() {
    command -v "$CC_FUZZ" >/dev/null 2>&1 || return 1
    local t
    t="$(mktemp -d)"
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$t/t.c"
    local ok=0
    "$CC_FUZZ" -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1 || ok=1
    rm -rf "$t"
    return $ok
}

build() {
    if ! have_libfuzzer; then
        echo "run.sh: SKIP: $CC_FUZZ with libFuzzer (-fsanitize=fuzzer) is not available" >&2
        exit 77
    fi
    # Configure every time (cheap when nothing changed): a build directory made
    # before a target was added has no rule for it otherwise.
    cmake -S "$HERE" -B "$B" -DCMAKE_C_COMPILER="$CC_FUZZ" >/dev/null
    cmake --build "$B" -j "$(nproc)" --target "$@" >/dev/null
}

cmd="${1:-}"
shift || true
case "$cmd" in
build)
    build "${TARGETS[@]}" gen_seeds
    ;;
gen)
    build gen_seeds
    "$B/gen_seeds" "$HERE/corpus"
    ;;
replay)
    [ $# -gt 0 ] && set -- "$@" || set -- "${TARGETS[@]}"
    build "$@"
    start=$(date +%s)
    for t in "$@"; do
        files=()
        for f in "$HERE/corpus/$t"/*; do
            [ -f "$f" ] || continue
            case "$(basename "$f")" in
            known-*) [ "${SLUICE_FUZZ_KNOWN:-0}" = 1 ] || continue ;;
            esac
            files+=("$f")
        done
        if [ ${#files[@]} -eq 0 ]; then
            echo "run.sh: $t: no corpus" >&2
            exit 1
        fi
        t0=$(date +%s%N)
        if ! "$B/$t" -error_exitcode=1 "${files[@]}" >"$B/$t.replay.log" 2>&1; then
            tail -n 60 "$B/$t.replay.log" >&2
            echo "run.sh: $t: FAILED replaying its corpus (log: $B/$t.replay.log)" >&2
            exit 1
        fi
        echo "run.sh: $t: ${#files[@]} inputs OK in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    done
    echo "run.sh: replay done in $(( $(date +%s) - start )) s"
    ;;
fuzz)
    t="${1:?target}"
    secs="${2:?seconds}"
    shift 2
    build "$t"
    mkdir -p "$B/work/$t" "$B/artifacts/$t"
    # New inputs go to the work dir; the checked-in corpus is only read.
    "$B/$t" -error_exitcode=1 -max_total_time="$secs" -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/$t/" "$@" "$B/work/$t" "$HERE/corpus/$t"
    ;;
merge)
    t="${1:?target}"
    build "$t"
    "$B/$t" -merge=1 -max_len="$(max_len "$t")" "$HERE/corpus/$t" "$B/work/$t"
    ;;
*)
    sed -n '2,15p' "$0" >&2
    exit 2
    ;;
esac
