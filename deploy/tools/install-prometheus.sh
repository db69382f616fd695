#!/usr/bin/env bash
# Install Prometheus' `prometheus` and `promtool` binaries under $1 (default .local/tools/prometheus),
# for the alert-rule tests and the scrape test of `make test`. Debian's `prometheus` package
# (bookworm: 2.42) is downloaded with apt-get and unpacked, not installed: no root, no service.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-$here/../../.local/tools/prometheus}"
if [[ -x "$target/usr/bin/promtool" && -x "$target/usr/bin/prometheus" ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    echo "install-prometheus: needs apt-get and dpkg (Debian or Ubuntu); or put promtool and" \
        "prometheus in $target/usr/bin yourself" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download prometheus >/dev/null 2>&1); }
if ! download; then  # no package lists yet: fetch them once (needs root), then try again
    apt-get update -qq >/dev/null 2>&1 || true
    download || {
        echo "install-prometheus: 'apt-get download prometheus' failed; run 'apt-get update' as root" >&2
        exit 1
    }
fi
mkdir -p "$target"
dpkg -x "$work"/prometheus_*.deb "$target"
"$target/usr/bin/promtool" --version 2>&1 | head -n 1 >&2
