#!/bin/sh
# Debian packages some suites need, by the command each provides.
# Installs what is missing when run as root with apt-get; otherwise lists it.
set -eu

# command:package pairs
NEEDS="haproxy:haproxy openssl:openssl kubectl:kubernetes-client pebble:pebble curl:curl redis-server:redis-server promtool:prometheus prometheus:prometheus nginx:nginx ab:apache2-utils wrk:wrk nghttp:nghttp2-client h2load:nghttp2-client chromium:chromium"

missing=""
for pair in $NEEDS; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages the tests need:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
  }
else
  echo "missing Debian packages:$missing"
  echo "suites that need them will be skipped (install them, e.g. apt-get install$missing)"
fi
