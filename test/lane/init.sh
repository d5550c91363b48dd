#!/bin/bash
# PID 1 of the kernel-lane guest: set up a minimal system, load the modules, run
# every guest scenario once (or one script: vipmesh_run), report the status on a
# marker line and power off.
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
# vipmesh_only=WORD on the kernel command line (run.sh: VIPMESH_LANE_ONLY) runs only
# the scenario files whose name contains WORD; the kernel hands it to us as a variable.
shopt -s nullglob
scenarios=()
for f in dist/test/vm/*.scenario.js; do
  [[ -z ${vipmesh_only:-} || $f == *"$vipmesh_only"* ]] && scenarios+=("$f")
done
if [ "${#scenarios[@]}" -eq 0 ]; then
  echo "kernel-lane: no scenario matches dist/test/vm/*${vipmesh_only:-}*.scenario.js"
  status=98
else
  echo "kernel-lane: $(uname -r), running ${#scenarios[@]} scenario file(s)"
  VIPMESH_LANE=1 node --test --test-concurrency=1 --test-reporter=tap "${scenarios[@]}"
  status=$?
fi
echo "VIPMESH-LANE-EXIT $status"
sync
poweroff -f
