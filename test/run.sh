#!/bin/sh
# Runs every test. Brings what the tests need: on a machine where we are root and apt
# works it installs missing Debian packages; elsewhere it names them, and suites that
# need them skip with a printed reason (under CI=true they fail instead).
set -eu
cd "$(dirname "$0")/.."

sh test/debian-deps.sh

npm run -s build
exec npx vitest run "$@"
