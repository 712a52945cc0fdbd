#!/usr/bin/env bash
# Make sure the browsers of the tests exist. Chromium (the Playwright tests): $NNV_CHROMIUM, the
# system Chromium, Playwright's own download. Firefox and WebKitGTK (the cross-engine tests,
# tests/test_engines.py): the system firefox-esr, and webkit2gtk-driver + xvfb. As root on
# Debian/Ubuntu, the missing system packages are installed; elsewhere an engine that is not
# installed is skipped by the tests, with the reason (NNV_ENGINES chooses engines explicitly).
set -euo pipefail
missing=()
have_chromium=""
if [ -n "${NNV_CHROMIUM:-}" ]; then have_chromium=1; fi
for c in /usr/bin/chromium /usr/bin/chromium-browser; do [ -x "$c" ] && have_chromium=1; done
if [ -z "$have_chromium" ] && ls "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium* >/dev/null 2>&1; then have_chromium=1; fi
[ -n "$have_chromium" ] || missing+=(chromium)
if [ -z "${NNV_FIREFOX:-}" ] && ! [ -x /usr/bin/firefox-esr ] && ! [ -x /usr/bin/firefox ]; then missing+=(firefox-esr); fi
if [ -z "${NNV_WEBKIT_DRIVER:-}" ] && ! command -v WebKitWebDriver >/dev/null 2>&1; then missing+=(webkit2gtk-driver libgl1-mesa-dri); fi
if [ -z "${DISPLAY:-}" ] && ! command -v Xvfb >/dev/null 2>&1; then missing+=(xvfb); fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: installing ${missing[*]}"
  apt-get update -qq
  others=()
  for p in "${missing[@]}"; do [ "$p" = chromium ] || others+=("$p"); done
  if [ "${#others[@]}" != "${#missing[@]}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  # Without their recommended packages (WebKit's pull in some 180 more): Mesa's software
  # renderer, listed above, is the one WebKit needs without a GPU.
  if [ ${#others[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${others[@]}" >/dev/null
  fi
  exit 0
fi
case " ${missing[*]} " in
  *" chromium "*)
    echo "ensure_browser: no Chromium found; trying 'playwright install chromium'"
    "${VENV:-.venv}/bin/python" -m playwright install chromium ;;
esac
echo "ensure_browser: not installed: ${missing[*]} (the tests of those engines are skipped, saying why)"
