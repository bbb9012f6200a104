#!/usr/bin/env bash
# System packages the test suite uses beyond pip: headless Chromium and its WebDriver, for the review page's
# browser test (tests/review). Idempotent: a no-op when both binaries are already there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Best effort: without them only the browser test skips (it says why), so a machine with no apt access can still
# run everything else; the failure is printed, not hidden.
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }; then
  echo "install_system_deps: could not install chromium and chromium-driver with apt-get;" \
       "tests/review/test_browser_e2e.py will skip" >&2
fi
