#!/usr/bin/env bash
# Make sure a Chromium exists for the Playwright tests. Order: $NNV_CHROMIUM,
# the system Chromium, Playwright's own download; as root on Debian/Ubuntu,
# install the system package when none is there.
set -euo pipefail
if [ -n "${NNV_CHROMIUM:-}" ]; then exit 0; fi
for c in /usr/bin/chromium /usr/bin/chromium-browser; do [ -x "$c" ] && exit 0; done
if ls "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium* >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: installing Debian's chromium package"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "ensure_browser: no Chromium found; trying 'playwright install chromium'"
exec "${VENV:-.venv}/bin/python" -m playwright install chromium
