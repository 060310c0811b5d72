#!/usr/bin/env bash
# Builds tests/consumer/main.cpp against an installed fanout with pkg-config alone, no CMake:
#   tests/consumer-pkgconfig/build.sh <prefix or /usr> <output binary> [--static]
# A static archive needs `pkg-config --static` (its private dependencies); a shared one does not.
set -euo pipefail
prefix=$1 out=$2 static=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$prefix" != /usr ]; then
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
fi
flags=$(pkg-config $static --cflags --libs fanout)
echo "pkg-config $static --cflags --libs fanout: $flags"
# shellcheck disable=SC2086  # the flags are words
c++ -std=c++20 -O1 "$here/../consumer/main.cpp" -o "$out" $flags
