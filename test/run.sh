#!/bin/sh
# Runs every test. Brings what the tests need: on a machine where we are root and apt
# works it installs missing Debian packages; elsewhere it names them, and suites that
# need them skip with a printed reason (under CI=true they fail instead).
set -eu
cd "$(dirname "$0")/.."

sh test/debian-deps.sh

npm run -s build

# As root, the tests run in a network namespace of their own: only loopback, no port
# shared with the host, and net.ipv4.tcp_migrate_req=1 as docs/tls.md recommends for
# hitless certificate changes on the uws engine.
if [ "$(id -u)" = 0 ] && [ -z "${LINTEL_TEST_NETNS:-}" ] && command -v ip >/dev/null &&
  unshare -n true 2>/dev/null; then
  exec unshare -n env LINTEL_TEST_NETNS=1 sh -c \
    'ip link set lo up && echo 1 >/proc/sys/net/ipv4/tcp_migrate_req && exec npx vitest run "$@"' \
    vitest "$@"
fi
exec npx vitest run "$@"
