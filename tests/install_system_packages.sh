#!/usr/bin/env bash
# System packages the test suite needs beyond Python's: Debian's Chromium, which
# renders the one-page tier report (tests/test_report_html.py). Java 17+ (for the
# Spark tests) is expected on the machine. Does nothing when Chromium is there.
set -euo pipefail
if command -v chromium >/dev/null; then
    exit 0
fi
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
