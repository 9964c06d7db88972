#!/usr/bin/env bash
# Unit tests and a short fuzzing run of pgfeed's pure C++ core (extension/core).
#
#   test/unit/run.sh                  GoogleTest suite via CTest, then ~20 s of libFuzzer
#
# Every stage runs even when an earlier one fails; the exit status is non-zero if any failed.
# Output goes to build/unit (CMake build, fuzzer binary, fuzz corpus and crash artifacts).
#
# Fuzzing longer: set FUZZ_SECONDS (and optionally FUZZ_JOBS to fuzz on several cores), e.g.
#   FUZZ_SECONDS=3600 FUZZ_JOBS=4 test/unit/run.sh
# or, after one run has built it, drive the fuzzer directly with any libFuzzer flags:
#   build/unit/fuzz_read_bits -max_total_time=3600 -max_len=600 build/unit/fuzz-corpus
# The corpus in build/unit/fuzz-corpus accumulates across runs. A crash leaves its input in
# build/unit/fuzz-artifacts/; replay it with build/unit/fuzz_read_bits <file>.
# FUZZ_SECONDS=0 skips fuzzing.
set -uo pipefail
cd "$(dirname "$0")/../.."

build=build/unit
fuzz_seconds=${FUZZ_SECONDS:-20}
fuzz_jobs=${FUZZ_JOBS:-1}
jobs=$(nproc 2>/dev/null || echo 2)
failed=0

echo "== unit: configure and build ($build)"
mkdir -p "$build"
if cmake -S test/unit -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; false; }; then
    if cmake --build "$build" -j "$jobs"; then
        echo "== unit: ctest"
        ctest --test-dir "$build" --output-on-failure -j "$jobs" || failed=1
    else
        echo "unit: build failed" >&2
        failed=1
    fi
else
    echo "unit: cmake configure failed" >&2
    failed=1
fi

if ((fuzz_seconds > 0)); then
    if command -v clang++ >/dev/null 2>&1; then
        echo "== fuzz: build $build/fuzz_read_bits"
        if clang++ -std=c++17 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -Iextension/core extension/core/*.cpp test/unit/fuzz_read_bits.cpp \
            -o "$build/fuzz_read_bits"; then
            mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
            echo "== fuzz: ${fuzz_seconds}s, corpus $build/fuzz-corpus"
            fuzz_args=(-max_total_time="$fuzz_seconds" -max_len=600 -print_final_stats=1
                       -artifact_prefix="$build/fuzz-artifacts/")
            if ((fuzz_jobs > 1)); then
                fuzz_args+=(-fork="$fuzz_jobs")
            fi
            # libFuzzer prints a status line per new coverage; keep the tail for the log.
            if ! "$build/fuzz_read_bits" "${fuzz_args[@]}" "$build/fuzz-corpus" >"$build/fuzz.log" 2>&1; then
                echo "fuzz: fuzz_read_bits failed; see $build/fuzz.log and $build/fuzz-artifacts/" >&2
                grep -v '^#[0-9]' "$build/fuzz.log" | tail -60 >&2
                failed=1
            else
                grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss)' "$build/fuzz.log" || tail -3 "$build/fuzz.log"
            fi
        else
            echo "fuzz: building fuzz_read_bits failed" >&2
            failed=1
        fi
    else
        echo "== fuzz: skipped, clang++ not found (test/install-deps.sh installs it)"
    fi
fi

if ((failed)); then
    echo "unit: FAILED" >&2
else
    echo "unit: all passed"
fi
exit $failed
