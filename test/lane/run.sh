#!/usr/bin/env bash
# Runs the kernel lane: builds the guest (build.sh), boots it under QEMU, streams its
# console to stdout (and to .cache/kernel-lane/console.log) and exits with the status
# the guest reports on its VIPMESH-LANE-EXIT line. No such line means the guest hung or
# crashed: exit 1. Exit 2: the lane could not be built (build.sh says what is missing).
#   VIPMESH_LANE_TIMEOUT  seconds before a hung guest is killed (default 3600: only a
#                         hang should reach it, on a machine busy with other work too)
#   VIPMESH_LANE_ONLY     run only the scenario and kernel test files whose path contains this word
#   VIPMESH_LANE_RUN      run `node FILE` (a path under dist/) instead of the scenarios
#   VIPMESH_LANE_APPEND   more kernel command line words; the guest's init sees each
#                         name=value word (lower case, no dot) as an environment variable
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${VIPMESH_LANE_CACHE:-$REPO/.cache/kernel-lane}
limit=${VIPMESH_LANE_TIMEOUT:-3600}
say() { echo "kernel-lane: $*" >&2; }

run=${VIPMESH_LANE_RUN:-}
run=${run#"$REPO"/}
if [ -n "$run" ] && { [[ $run != dist/* || $run =~ [^A-Za-z0-9_./-] ]] || [ ! -f "$REPO/$run" ]; }; then
  say "VIPMESH_LANE_RUN=$run: not a file under $REPO/dist (the guest has only dist; e.g. dist/bench/ipvs-guest.js)"
  exit 2
fi

# One lane at a time per checkout: runs share the cache (initrd, console.log), and two
# TCG guests on a small machine would only slow each other into their time limits.
mkdir -p "$CACHE" && exec 9>"$CACHE/lock"
flock -n 9 || { say "waiting for another lane run in this checkout"; flock 9; }

started=$(date +%s)
"$REPO/test/lane/build.sh" || exit 2
built=$(date +%s)

append='console=ttyS0 panic=-1 quiet'
[ -z "${VIPMESH_LANE_ONLY:-}" ] || append+=" vipmesh_only=$VIPMESH_LANE_ONLY" # init sees it as a variable
[ -z "$run" ] || append+=" vipmesh_run=$run"
[ -z "${VIPMESH_LANE_APPEND:-}" ] || append+=" $VIPMESH_LANE_APPEND"
log=$CACHE/console.log
# TCG, not KVM: with -enable-kvm the guest hangs on this kind of machine. No network
# device: the scenarios build their own in namespaces. stdin is /dev/null so that
# qemu, in timeout's background process group, never stops on reading a terminal.
# panic=-1 with -no-reboot makes a crashed guest end qemu instead of looping.
timeout -k 10 "$limit" qemu-system-x86_64 -accel tcg -m 3072 -smp 2 -nic none \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initrd.img" -append "$append" </dev/null 2>&1 |
  sed -u 's/\r$//' | tee "$log"
qemu_status=${PIPESTATUS[0]}
ended=$(date +%s)

marker=$(grep -a '^VIPMESH-LANE-EXIT [0-9]*$' "$log" | tail -1)
if [ -z "$marker" ]; then
  if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    why="the time limit of ${limit}s (VIPMESH_LANE_TIMEOUT) was hit and the guest was killed"
  else
    why="qemu exited with status $qemu_status after $((ended - built))s"
  fi
  say "the guest hung or crashed: no VIPMESH-LANE-EXIT line; $why (console: $log)"
  exit 1
fi
status=${marker#VIPMESH-LANE-EXIT }
say "guest status $status; build $((built - started))s, boot to poweroff $((ended - built))s"
exit "$status"
