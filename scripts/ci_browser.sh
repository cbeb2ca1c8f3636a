#!/usr/bin/env bash
# Make headless Chromium and its WebDriver available for the browser tests
# (tests/report/test_browser.py opens the HTML report and a live dashboard in them).
# Installs Debian's chromium and chromium-driver when either is missing: nothing is downloaded
# at test time, Selenium is pointed at these executables. Needs root (or sudo) for apt-get.
set -euo pipefail

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "Chromium or its driver not found; installing Debian's chromium and chromium-driver ..."
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q chromium chromium-driver >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
echo "browser: $(chromium --version 2>/dev/null | head -n 1); driver: $(chromedriver --version | head -n 1)"
