#!/usr/bin/env bash
# What the test suite needs besides the Python and Node packages: Debian's chromium,
# the headless browser tests/test_live_auction.py drives through Playwright (with
# executable_path=/usr/bin/chromium; no browser build is ever downloaded).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/setup.sh: install Chromium as /usr/bin/chromium (Debian's chromium package)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
