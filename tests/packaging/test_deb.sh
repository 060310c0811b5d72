#!/usr/bin/env bash
# The Debian packages end to end: build fanout-dev and fanout-relay with CPack, inspect them with
# dpkg-deb, install them with dpkg -i, build a consumer against /usr with find_package and with
# pkg-config, run the packaged relay's --version and --check (as the `fanout` user the unit runs
# as), verify the systemd unit, then purge both and check nothing is left.
#
#   tests/packaging/test_deb.sh [build dir, default build/deb]      (JOBS=2 by default)
#
# It installs into /usr, so it is not part of ctest: .ci/run runs it as its own stage. Exit 77
# (skipped) when not root or when a fanout package is already installed (it would be replaced).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
build=${1:-build/deb}
jobs=${JOBS:-2}

if [ "$(id -u)" != 0 ]; then
  echo "test_deb: skipped: dpkg -i needs root"; exit 77
fi
for p in fanout-dev fanout-relay; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    echo "test_deb: skipped: $p is installed on this machine and would be replaced"; exit 77
  fi
done

fail() { echo "test_deb: FAILED: $*" >&2; exit 1; }
installed=0
work=$(mktemp -d /tmp/fanout-deb-test.XXXXXX)
cleanup() {
  if [ "$installed" = 1 ]; then dpkg --purge fanout-relay fanout-dev >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build the packages ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DFANOUT_BUILD_TESTS=OFF -DFANOUT_BUILD_EXAMPLES=OFF -DFANOUT_BUILD_RELAY=ON -DFANOUT_INSTALL=ON \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" -j"$jobs"
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null)
dev=$(ls "$build"/fanout-dev_*.deb) || fail "no fanout-dev .deb"
relay=$(ls "$build"/fanout-relay_*.deb) || fail "no fanout-relay .deb"
echo "   $dev"; echo "   $relay"

echo "== inspect them with dpkg-deb"
has() {  # has <deb> <path>: the package contains the path
  dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|' | grep -qx -- "$2" || fail "$(basename "$1") lacks $2"
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for f in /usr/include/fanout/hub.hpp /usr/include/fanout/export.hpp /usr/include/fanout/version.hpp \
         /usr/lib/$multiarch/libfanout.a /usr/lib/$multiarch/cmake/fanout/fanoutConfig.cmake \
         /usr/lib/$multiarch/cmake/fanout/fanoutConfigVersion.cmake /usr/lib/$multiarch/pkgconfig/fanout.pc; do
  has "$dev" "$f"
done
for f in /usr/bin/fanout-relay /etc/fanout/relay.toml /usr/lib/systemd/system/fanout-relay.service \
         /usr/share/fanout/relay.toml; do
  has "$relay" "$f"
done
if dpkg-deb -c "$relay" | grep -q "fanout-feed-sim\|include/"; then fail "fanout-relay carries development files"; fi
dpkg-deb -f "$dev" Depends | grep -q "libasio-dev" || fail "fanout-dev does not depend on libasio-dev"
dpkg-deb -f "$relay" Depends | grep -q "libfmt" || fail "fanout-relay's Depends lacks the shared libraries (shlibdeps)"
dpkg-deb -I "$relay" conffiles | grep -qx /etc/fanout/relay.toml || fail "/etc/fanout/relay.toml is not a conffile"
for s in postinst prerm postrm; do dpkg-deb -I "$relay" "$s" >/dev/null || fail "fanout-relay has no $s"; done
echo "   fanout-dev Depends: $(dpkg-deb -f "$dev" Depends)"
echo "   fanout-relay Depends: $(dpkg-deb -f "$relay" Depends)"

echo "== dpkg -i"
installed=1
dpkg -i "$dev" "$relay" >/dev/null
getent passwd fanout >/dev/null || fail "postinst made no fanout user"
[ "$(stat -c %U:%G:%a /etc/fanout/relay.toml)" = root:fanout:640 ] ||
  fail "/etc/fanout/relay.toml is $(stat -c %U:%G:%a /etc/fanout/relay.toml), expected root:fanout:640"

echo "== a consumer against /usr: find_package"
cmake -S tests/consumer -B "$work/consumer" >/dev/null
cmake --build "$work/consumer" -j"$jobs" >/dev/null
"$work/consumer/fanout-consumer"
echo "== a consumer against /usr: pkg-config --static"
tests/consumer-pkgconfig/build.sh /usr "$work/consumer-pc" --static
"$work/consumer-pc"

echo "== the packaged relay"
/usr/bin/fanout-relay --version
# --check binds the listen addresses as start would; 8080/8081 may be taken on a shared machine, so
# the environment (FANOUT_*, docs/relay.md) moves them to free ports, which tries that path too.
runuser -u fanout -- env FANOUT_SERVER_LISTEN=127.0.0.1:0 FANOUT_ADMIN_LISTEN=127.0.0.1:0 \
  /usr/bin/fanout-relay --check --config /etc/fanout/relay.toml ||
  fail "fanout-relay --check --config /etc/fanout/relay.toml (as the fanout user)"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' /usr/lib/systemd/system/fanout-relay.service ||
  fail "the unit has no ExecReload (SIGHUP reloads certificates and the log level)"

echo "== systemd-analyze verify"
if out=$(systemd-analyze verify /usr/lib/systemd/system/fanout-relay.service 2>&1); then
  echo "   unit ok"
else
  echo "$out"
  fail "systemd-analyze verify fanout-relay.service"
fi
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }
# The hardening's score (0 = most confined, 10 = none), for docs/install.md.
systemd-analyze security --offline=yes /usr/lib/systemd/system/fanout-relay.service 2>/dev/null |
  grep "Overall exposure" || true

echo "== dpkg --purge"
dpkg --purge fanout-relay fanout-dev >/dev/null
installed=0
for f in /usr/bin/fanout-relay /etc/fanout /usr/include/fanout /usr/lib/$multiarch/libfanout.a \
         /usr/lib/systemd/system/fanout-relay.service; do
  [ ! -e "$f" ] || fail "$f is still there after purge"
done
echo "test_deb passed"
