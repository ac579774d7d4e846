#!/bin/sh
# A DNS-01 hook in the style of lego's `exec` provider for tests: `present <fqdn> <value>` adds
# a TXT record in pebble-challtestsrv's mock DNS through its management API at $CHALLTESTSRV_URL;
# `cleanup <fqdn> <value>` removes every TXT record of <fqdn> (challtestsrv cannot remove one).
set -eu

usage() {
  echo "usage: $0 present|cleanup <fqdn> <value>  (with CHALLTESTSRV_URL set)" >&2
  exit 2
}
[ $# -eq 3 ] || usage
[ -n "${CHALLTESTSRV_URL:-}" ] || usage

# challtestsrv stores names as given and looks them up fully qualified.
case $2 in
*.) fqdn=$2 ;;
*) fqdn=$2. ;;
esac

# JSON string escaping for the two characters that need it in names and TXT values.
json() {
  printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'
}

case $1 in
present) path=/set-txt body="{\"host\":\"$(json "$fqdn")\",\"value\":\"$(json "$3")\"}" ;;
cleanup) path=/clear-txt body="{\"host\":\"$(json "$fqdn")\"}" ;;
*) usage ;;
esac

if ! out=$(curl --silent --show-error --max-time 5 --fail-with-body \
  --data "$body" "${CHALLTESTSRV_URL%/}$path" 2>&1); then
  echo "$0: $1 $fqdn: POST ${CHALLTESTSRV_URL%/}$path failed: $out" >&2
  exit 1
fi
