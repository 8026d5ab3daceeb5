#!/usr/bin/env bash
# The report's browser test loads pages in a headless Chromium. Install Debian's `chromium` where none is
# installed and this user may (root, or sudo without a password). Never fails: where it cannot install,
# that test skips and says why.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "note: no chromium and no root to install it; the report's browser test will skip" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no chromium and no apt-get; the report's browser test will skip" >&2
  exit 0
fi
if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium; } \
    >/dev/null 2>&1; then
  echo "note: could not install chromium; the report's browser test will skip" >&2
fi
exit 0
