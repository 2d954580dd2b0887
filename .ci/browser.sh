#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/browser): Playwright drives /usr/bin/chromium and never downloads
# a browser of its own (`playwright install` needs the internet). Installs it with apt when it is missing.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "chromium is missing: run 'apt-get install chromium' as root" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing chromium (Debian) for the browser tests"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
