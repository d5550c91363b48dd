#!/bin/bash
# PID 1 of the kernel-lane guest: set up a minimal system, load the modules, run
# every guest scenario and the IPVS kernel tests once (or one script: vipmesh_run),
# report the status on a marker line and power off.
# Everything goes to the console (ttyS0), which run.sh streams to the host.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp TERM=dumb NO_COLOR=1 LANG=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
ln -sfn /run /var/run
mkdir -p /run/netns /root
ip link set lo up
hostname vipmesh-lane

while read -r module _; do
  [[ -z $module || $module == \#* ]] && continue
  /usr/sbin/modprobe "$module" 2>/dev/null || echo "kernel-lane: warning: cannot load module $module"
done </etc/vipmesh-lane/modules

cd /vipmesh || { echo 'VIPMESH-LANE-EXIT 97'; poweroff -f; }
# vipmesh_run=FILE (run.sh: VIPMESH_LANE_RUN) runs `node FILE` (relative to the project)
# instead of the scenarios, e.g. a benchmark; its exit status goes on the marker line.
if [ -n "${vipmesh_run:-}" ]; then
  echo "kernel-lane: $(uname -r), running $vipmesh_run"
  VIPMESH_LANE=1 node "$vipmesh_run"
  echo "VIPMESH-LANE-EXIT $?"
  sync
  poweroff -f
fi
# What the guest tests, one `node --test` run per group, each announced on a
# VIPMESH-LANE-GROUP line so the host can tell whose results follow: the scenarios
# (test/vm/), then each kernel test file that asserts IPVS behaviour either way and
# so must hold on this IPVS kernel too. The rest of test/kernel needs what the guest
# lacks (dig, dnsmasq, musl-gcc for the resolver) and runs on the host only.
# vipmesh_only=WORD on the kernel command line (run.sh: VIPMESH_LANE_ONLY) runs only
# the files whose path contains WORD; the kernel hands it to us as a variable.
shopt -s nullglob
wanted() { [[ -z ${vipmesh_only:-} || $1 == *"$vipmesh_only"* ]]; }
scenarios=()
for f in dist/test/vm/*.scenario.js; do
  wanted "$f" && scenarios+=("$f")
done
kernel_tests=()
for f in dist/test/kernel/adapters.test.js dist/test/kernel/reconcile.test.js dist/test/kernel/ingress-filter.test.js; do
  wanted "$f" && kernel_tests+=("$f")
done
status=0
run_group() { # NAME FILE...
  echo "VIPMESH-LANE-GROUP $1"
  shift
  VIPMESH_LANE=1 node --test --test-concurrency=1 --test-reporter=tap "$@"
  local s=$?
  [ "$status" -ne 0 ] || status=$s
}
if [ "${#scenarios[@]}" -eq 0 ] && [ "${#kernel_tests[@]}" -eq 0 ]; then
  echo "kernel-lane: no scenario or kernel test matches *${vipmesh_only:-}*"
  status=98
else
  echo "kernel-lane: $(uname -r), running ${#scenarios[@]} scenario file(s) and ${#kernel_tests[@]} kernel test file(s)"
  [ "${#scenarios[@]}" -eq 0 ] || run_group scenarios "${scenarios[@]}"
  for f in "${kernel_tests[@]}"; do
    run_group "${f#dist/}" "$f"
  done
fi
echo "VIPMESH-LANE-EXIT $status"
sync
poweroff -f
