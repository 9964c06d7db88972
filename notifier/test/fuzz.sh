#!/usr/bin/env bash
# Fuzzing of the notifier's parsers and token checks: builds every notifier/test/fuzz_*.cpp as a
# libFuzzer target (clang, ASan + UBSan) and runs each one for a while.
#
#   notifier/test/fuzz.sh                    every target, FUZZ_SECONDS (default 10) each
#   notifier/test/fuzz.sh fuzz_parsers       only the targets named
#
# Prints one summary line per target; the exit status is non-zero if any target failed to build or
# crashed (any sanitizer report, abort, leak, timeout or out-of-memory). Everything goes under
# build/notifier-fuzz/: the binaries, obj/ (the notifier sources, compiled once for all targets),
# corpus/<target>/ (kept and grown across runs), artifacts/<target>/ (crashing inputs) and
# <target>.log (the fuzzer's output).
#
# Fuzzing longer: set FUZZ_SECONDS, and FUZZ_JOBS to fuzz on several cores; FUZZ_ARGS passes extra
# libFuzzer flags, e.g.
#   FUZZ_SECONDS=3600 FUZZ_JOBS=2 FUZZ_ARGS='-max_len=8192' notifier/test/fuzz.sh fuzz_parsers
# or, once a run has built it, drive a target directly with any libFuzzer flags:
#   build/notifier-fuzz/fuzz_parsers -max_total_time=3600 build/notifier-fuzz/corpus/fuzz_parsers
# Replay a crash with build/notifier-fuzz/<target> build/notifier-fuzz/artifacts/<target>/crash-...
# FUZZ_SECONDS=0 only builds.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

out=build/notifier-fuzz
fuzz_seconds=${FUZZ_SECONDS:-10}
fuzz_jobs=${FUZZ_JOBS:-1}
read -r -a extra_args <<<"${FUZZ_ARGS:-}"
jobs=$(nproc 2>/dev/null || echo 2)
packages=(libevent_core libevent_extra hiredis libpq libcjson inih libjwt)

if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz: clang++ not found (test/install-deps.sh installs it)" >&2
    exit 1
fi
if ! pkg_cflags=$(pkg-config --cflags "${packages[@]}") || ! pkg_libs=$(pkg-config --libs "${packages[@]}"); then
    echo "fuzz: pkg-config cannot find all of: ${packages[*]}" >&2
    exit 1
fi
read -r -a pkg_cflags <<<"$pkg_cflags"
read -r -a pkg_libs <<<"$pkg_libs"

# The notifier's sources are compiled once with coverage instrumentation but without libFuzzer's
# main (fuzzer-no-link); each target then links them with -fsanitize=fuzzer.
# shellcheck disable=SC2054 # the commas belong to the flags
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
cxxflags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Inotifier
          -DPGFEED_NOTIFIER_VERSION='"fuzz"' "${pkg_cflags[@]}")

if (($# > 0)); then
    targets=("$@")
else
    targets=()
    for source in notifier/test/fuzz_*.cpp; do
        [[ -e $source ]] && targets+=("$(basename "$source" .cpp)")
    done
fi
if ((${#targets[@]} == 0)); then
    echo "fuzz: no notifier/test/fuzz_*.cpp" >&2
    exit 1
fi

mkdir -p "$out/obj"
echo "== fuzz: compile the notifier sources ($out/obj)"
sources=()
for source in notifier/*.cpp; do
    [[ $source == notifier/main.cpp ]] || sources+=("$source")
done
objects=()
for source in "${sources[@]}"; do
    objects+=("$out/obj/$(basename "$source" .cpp).o")
done
# One compiler per core; each one's messages are printed in one piece.
core_built=1
# shellcheck disable=SC2016 # the inner script expands its own arguments
if ! printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c '
        out=$1; shift; source=$1; shift
        object="$out/obj/$(basename "$source" .cpp).o"
        clang++ "$@" -c "$source" -o "$object" 2>"$object.log"; status=$?
        cat "$object.log" >&2; exit $status
    ' sh "$out" {} "${cxxflags[@]}" "${sanitize[@]}" -fsanitize=fuzzer-no-link; then
    echo "fuzz: compiling the notifier sources failed" >&2
    core_built=0
fi

failed=0
summary=()
for target in "${targets[@]}"; do
    source=notifier/test/$target.cpp
    binary=$out/$target
    if [[ ! -f $source ]]; then
        summary+=("$target: BUILD FAILED (no $source)")
        failed=1
        continue
    fi
    if ((!core_built)); then
        summary+=("$target: BUILD FAILED (the notifier sources did not compile)")
        failed=1
        continue
    fi
    echo "== fuzz: build $binary"
    if ! clang++ "${cxxflags[@]}" "${sanitize[@]}" -fsanitize=fuzzer "$source" "${objects[@]}" "${pkg_libs[@]}" \
        -o "$binary"; then
        summary+=("$target: BUILD FAILED")
        failed=1
        continue
    fi
    if ((fuzz_seconds <= 0)); then
        summary+=("$target: built, not run (FUZZ_SECONDS=0)")
        continue
    fi

    corpus=$out/corpus/$target
    artifacts=$out/artifacts/$target
    log=$out/$target.log
    mkdir -p "$corpus" "$artifacts"
    echo "== fuzz: $target for ${fuzz_seconds}s, corpus $corpus"
    fuzz_args=(-max_total_time="$fuzz_seconds" -print_final_stats=1 -artifact_prefix="$artifacts/")
    if ((fuzz_jobs > 1)); then
        fuzz_args+=(-fork="$fuzz_jobs")
    fi
    "$binary" "${fuzz_args[@]}" "${extra_args[@]}" "$corpus" >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    inputs=$(find "$corpus" -type f | wc -l)
    if ((status != 0)); then
        # libFuzzer prints a status line per new coverage; show what went wrong, not those.
        grep -v '^#[0-9]' "$log" | tail -60 >&2
        summary+=("$target: FAILED (exit $status; see $log and $artifacts/)")
        failed=1
    else
        summary+=("$target: ok, ${runs:-?} runs in ${fuzz_seconds}s, corpus $inputs inputs")
    fi
done

echo "== fuzz: summary"
printf '%s\n' "${summary[@]}"
if ((failed)); then
    echo "fuzz: FAILED" >&2
else
    echo "fuzz: all passed"
fi
exit $failed
