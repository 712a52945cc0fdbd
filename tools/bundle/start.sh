#!/bin/sh
# Start the Neural Network Visualizer (Linux; start.command runs this on macOS): find
# Python 3.7 or newer and run start.py with it, or say plainly that Python is missing.
cd "$(dirname "$0")" || exit 1
for python in python3 python; do
  if command -v "$python" >/dev/null 2>&1 &&
     "$python" -c 'import sys; sys.exit(sys.version_info < (3, 7))' >/dev/null 2>&1; then
    exec "$python" start.py "$@"
  fi
done
echo "The Neural Network Visualizer needs Python 3 (3.7 or newer), and none was found on this computer."
if [ "$(uname -s)" = Darwin ]; then
  echo "Install it from python.org (or run: xcode-select --install), then double-click start.command again."
else
  echo "Install it with your package manager (for example: sudo apt install python3), then run start.sh again."
fi
if [ -t 0 ]; then
  printf "Press Enter to close. "
  read -r _
fi
exit 1
