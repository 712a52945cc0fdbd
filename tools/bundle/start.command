#!/bin/sh
# macOS: double-click this file to start the Neural Network Visualizer (see README.txt).
exec /bin/sh "$(dirname "$0")/start.sh" "$@"
