#!/usr/bin/env bash
# Builds and runs one fuzz target with libFuzzer on the stable toolchain (no cargo-fuzz,
# no nightly): the same SanitizerCoverage instrumentation cargo-fuzz asks rustc for,
# through stable codegen options. Usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer args...]
# Runs from the checked-in corpus (fuzz/corpus/TARGET, grown in a scratch copy) and
# keeps a crash in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target="$1"; secs="${2:-60}"; shift $(( $# > 1 ? 2 : 1 ))
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# An explicit --target keeps the instrumentation off build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet --target "$host" --bin "$target"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "corpus/$target" "artifacts/$target"
cp -r "corpus/$target/." "$work/" 2>/dev/null || true
"$CARGO_TARGET_DIR/$host/release/$target" "$work" "corpus/$target" \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 "$@"
