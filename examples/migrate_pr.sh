#!/usr/bin/env bash
# The QEMU migrate-pr pattern with `fcsoft persist`, the way QEMU's reservation tests drive
# sg_persist: a VM on the source host holds a Write Exclusive - Registrants Only
# reservation; during live migration the destination host registers the SAME key from its
# own WWPN, then takes the reservation over with PREEMPT of that key. Afterwards the
# source's registration is gone (it gets REGISTRATIONS PREEMPTED) and only the destination
# may write.
#
#   bin/fcsoft serve &            # the built-in lab: both WWPNs below are mapped to LUN 0
#   examples/migrate_pr.sh        # or: FABRIC=host:port TARGET=wwpn examples/migrate_pr.sh
#
# Each command is sg_persist's with the command name changed, plus where to find the LUN.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
FCSOFT=${FCSOFT:-"$here/../bin/fcsoft"}
FABRIC=${FABRIC:-127.0.0.1:3225}
TARGET=${TARGET:-50:01:43:80:00:00:00:01}
LUN=${LUN:-0}
SRC=${SRC:-10:00:00:00:c9:00:00:01}   # the source host's HBA
DST=${DST:-10:00:00:00:c9:00:00:02}   # the destination host's HBA
KEY=${KEY:-0x123abc}                   # the VM's reservation key, the same on both hosts

persist() {  # persist WWPN sg_persist-options...
    local who=$1; shift
    $FCSOFT persist --fabric "$FABRIC" --initiator "$who" --target "$TARGET" --lun "$LUN" "$@"
}

echo "== clean slate"
persist "$SRC" --out --register-ignore --param-sark="$KEY" >/dev/null
persist "$SRC" --out --clear --param-rk="$KEY" >/dev/null

echo "== source: register and reserve (type 5, write exclusive - registrants only)"
persist "$SRC" --out --register --param-sark="$KEY"
persist "$SRC" --out --reserve --param-rk="$KEY" --prout-type=5

echo "== destination: register the same key from its own WWPN"
persist "$DST" --out --register --param-sark="$KEY"
persist "$DST" --in --read-keys

echo "== destination: take over with PREEMPT of its own key"
persist "$DST" --out --preempt --param-rk="$KEY" --param-sark="$KEY" --prout-type=5
persist "$DST" --in --read-reservation
persist "$DST" --in --read-keys

echo "== the source is no longer registered: its RESERVE now conflicts (exit status 24)"
set +e
persist "$SRC" --out --reserve --param-rk="$KEY" --prout-type=5
status=$?
set -e
# the first command after the preemption may report the unit attention (exit status 6)
if [ "$status" = 6 ]; then
    set +e
    persist "$SRC" --out --reserve --param-rk="$KEY" --prout-type=5
    status=$?
    set -e
fi
echo "source RESERVE exit status: $status"
[ "$status" = 24 ]

echo "== clean up"
persist "$DST" --out --clear --param-rk="$KEY" >/dev/null
echo "migrate-pr pattern: OK"
