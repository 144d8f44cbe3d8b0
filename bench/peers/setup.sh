#!/usr/bin/env bash
# Create one virtual environment per peer under bench/.venvs/<peer>.
# Their pins conflict with each other (and with ours), hence one venv each. All pin pandas<3:
# their released versions predate pandas 3 (evidently 0.7.23 does not even import under it).
# Usage: bench/peers/setup.sh [peer ...]   (default: evidently nannyml whylogs frouros)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$(cd "$HERE/.." && pwd)/.venvs"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# Telemetry off everywhere (there is no network here anyway).
export NML_DISABLE_USAGE_LOGGING=1 DO_NOT_TRACK=1 EVIDENTLY_DISABLE_TELEMETRY=1
export WHYLOGS_NO_ANALYTICS=True

pins_for() {
    case "$1" in
        # evidently 0.7.23 does not import under pandas 3.
        evidently) echo "evidently==0.7.23 pandas<3 pyarrow" ;;
        # nannyml 0.13.1 may need statsmodels explicitly.
        nannyml) echo "nannyml==0.13.1 statsmodels pandas<3 pyarrow" ;;
        # whylogs' drift scoring needs the [viz] extra.
        whylogs) echo "whylogs[viz]==1.6.4 pandas<3 pyarrow" ;;
        frouros) echo "frouros==0.9.0 pandas<3 pyarrow" ;;
        *) echo "unknown peer: $1" >&2; return 1 ;;
    esac
}

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(evidently nannyml whylogs frouros)

mkdir -p "$VENVS"
status=0
for peer in "${peers[@]}"; do
    pins="$(pins_for "$peer")" || { status=1; continue; }
    venv="$VENVS/$peer"
    echo "== $peer: $pins -> $venv"
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv "$venv"
    fi
    set -f  # no globbing of "whylogs[viz]"
    # shellcheck disable=SC2086
    if "$venv/bin/python" -m pip install --quiet $pins 2>&1 \
        | { grep -v "^WARNING: Location" || true; } \
        && "$venv/bin/python" "$HERE/run_$peer.py" --check; then
        touch "$venv/.ok"
        echo "== $peer: ok"
    else
        rm -f "$venv/.ok"
        echo "== $peer: FAILED" >&2
        status=1
    fi
done
exit $status
