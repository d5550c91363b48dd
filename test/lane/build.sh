#!/usr/bin/env bash
# Builds what the kernel lane boots, under $REPO/.cache/kernel-lane/:
#   vmlinuz     Debian's cloud kernel (this machine's kernel has no IPVS), fetched once per version
#   initrd.img  base.cpio.gz (this machine's binaries, their libraries, the networking modules,
#               busybox, /init; rebuilt only when an input changes) followed by project.cpio.gz
#               (dist, fixtures, production node_modules; rebuilt every run, it is small). The
#               kernel unpacks concatenated archives in order, so the two never need merging.
# It does not compile: run `npm run build` first (npm run test:lane does).
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin # depmod lives there, and non-root PATHs may lack it
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LANE=$REPO/test/lane
CACHE=${VIPMESH_LANE_CACHE:-$REPO/.cache/kernel-lane}
say() { echo "kernel-lane: $*" >&2; }
die() { say "$*"; exit 2; }

# --- prerequisites: say everything that is missing at once ---------------------------
missing=()
for tool in qemu-system-x86_64 cpio gzip depmod apt-get apt-cache dpkg busybox node bash ip ss \
  nsenter unshare ipvsadm xtables-nft-multi kmod conntrack flock dig curl etcd; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] || die "cannot build: missing ${missing[*]} (install with: sudo scripts/install-system-deps.sh)"
[ -f "$REPO/dist/src/cli/bin.js" ] || die "cannot build: no dist/src/cli/bin.js (run npm run build first)"
mkdir -p "$CACHE"

# --- the kernel: resolve the cloud metapackage, download and unpack once per version --
resolve() { # prints nothing when the lists do not know the package
  { apt-cache depends linux-image-cloud-amd64 2>/dev/null || true; } | sed -n 's/.*Depends: linux-image-\(.*-cloud-amd64\)$/\1/p' | head -1
}
apt_update() {
  # A fresh machine has empty apt lists; a stale one may name a version the mirror dropped.
  [ "$(id -u)" -eq 0 ] || die "apt lists are missing or stale and refreshing them needs root (sudo apt-get update)"
  say "apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
}
fetch() {
  local dir=$CACHE/kernel-$1 tmp opts=()
  [ -f "$dir/.done" ] && return 0
  say "downloading linux-image-$1"
  tmp=$(mktemp -d "$CACHE/tmp.XXXXXX")
  # As root, apt would otherwise try (and warn about) dropping to _apt for the download.
  [ "$(id -u)" -ne 0 ] || opts=(-o APT::Sandbox::User=root)
  # Called as a condition, so set -e is off in here: every step is chained by hand.
  (cd "$tmp" && apt-get download -qq "${opts[@]}" "linux-image-$1" >&2) &&
    dpkg -x "$tmp"/linux-image-*.deb "$tmp/x" &&
    rm -rf "$CACHE"/kernel-* && mkdir -p "$dir/root/lib" && # one kernel: each is 100 MB unpacked
    mv "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz" &&
    mv "$tmp/x/lib/modules" "$dir/root/lib/" &&
    depmod -b "$dir/root" "$1" && # modules.dep, for the closure below
    touch "$dir/.done"
  local ok=$?
  rm -rf "$tmp"
  return $ok
}
version=${VIPMESH_LANE_KERNEL:-$(resolve)}
if [ -z "$version" ] || ! fetch "$version"; then
  apt_update
  [ -n "${VIPMESH_LANE_KERNEL:-}" ] || version=$(resolve)
  [ -n "$version" ] || die "cannot resolve linux-image-cloud-amd64 to a kernel version (apt-cache depends)"
  fetch "$version" || die "cannot download linux-image-$version (apt-get download)"
fi
kdir=$CACHE/kernel-$version

# --- base initramfs, keyed by everything that goes into it ------------------------------
bin_of() { readlink -f "$(command -v "$1")"; }
# node is whatever this PATH finds, as for the host's tests: the guest runs the same Node.
# conntrack: reconcile forgets DNS flows with it when a resolver port moves. flock
# (util-linux's; busybox has none): vipmesh's node lock. dig, curl and etcd: the lab's
# demo (dist/src/lab/guest.js) asks the embedded DNS and the VIP as an operator would,
# with --etcd from a real etcd.
bins=(node bash ip ss nsenter unshare ipvsadm xtables-nft-multi kmod conntrack flock dig curl etcd busybox)
key=$( {
  echo "$version"
  cat "$LANE/build.sh" "$LANE/init.sh" "$LANE/modules.txt"
  for b in "${bins[@]}"; do stat -L -c '%n %s %Y' "$(bin_of "$b")"; done
  stat -c '%s %Y' /var/lib/dpkg/status # any package upgrade (libraries, xtables plugins)
} | sha256sum | cut -c1-16)
base=$CACHE/base-$key.cpio.gz
if [ ! -f "$base" ]; then
  say "building the base initramfs ($base)"
  root=$CACHE/base-root && rm -rf "$root"
  mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc/vipmesh-lane,proc,sys,dev,run,tmp,root,var,mnt}
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done # usrmerge, as on the host
  # A file at /lib/x or /usr/lib/x on the host goes to /usr/lib/x in the guest.
  put() { local dest=$root/usr/${1#/usr/}; [ -e "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -L "$1" "$dest"; }; }
  plugins=(/usr/lib/x86_64-linux-gnu/xtables/*.so)
  for b in "${bins[@]}"; do cp -L "$(bin_of "$b")" "$root/usr/bin/$b"; done
  for f in "${plugins[@]}"; do put "$f"; done
  for f in "${bins[@]/#/$root/usr/bin/}" "${plugins[@]}"; do
    ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true # static busybox has none
  done | sort -u | while read -r lib; do put "$lib"; done
  for t in iptables iptables-save iptables-restore iptables-nft iptables-nft-save iptables-nft-restore; do
    ln -s ../bin/xtables-nft-multi "$root/usr/sbin/$t"
    ln -s ../bin/xtables-nft-multi "$root/usr/sbin/ip6${t#ip}"
  done
  # The lab answers ARP per node on a flat bridge with ebtables (nft backend).
  for t in ebtables ebtables-nft; do ln -s ../bin/xtables-nft-multi "$root/usr/sbin/$t"; done
  # Real modprobe: the kernel's on-demand loads and ipvsadm call /sbin/modprobe.
  for t in ip ss ipvsadm nsenter unshare conntrack flock; do ln -s ../bin/$t "$root/usr/sbin/$t"; done # where scripts may look
  for t in modprobe depmod insmod rmmod lsmod modinfo; do ln -s ../bin/kmod "$root/usr/sbin/$t"; done
  for a in $(busybox --list); do # busybox for everything else (sh, cat, printf, mount, poweroff...)
    [ -e "$root/usr/bin/$a" ] || [ -e "$root/usr/sbin/$a" ] || ln -s busybox "$root/usr/bin/$a"
  done
  # Modules: all of net/ and drivers/net/*.ko, plus the listed ones, with their dependencies.
  mods=$kdir/root/lib/modules/$version
  awk -v names="$(grep -v '^#' "$LANE/modules.txt" | tr '\n-' ' _')" '
    BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    { key = $1; sub(/:$/, "", key); base = key; sub(/.*\//, "", base); sub(/\.ko.*$/, "", base); gsub(/-/, "_", base)
      if (key ~ /^kernel\/net\// || key ~ /^kernel\/drivers\/net\/[^\/]+\.ko/ || base in want)
        for (i = 1; i <= NF; i++) { f = $i; sub(/:$/, "", f); print f } }' "$mods/modules.dep" |
    sort -u | (cd "$mods" && cpio -pdm --quiet "$root/usr/lib/modules/$version")
  cp "$mods"/modules.{order,builtin,builtin.modinfo} "$root/usr/lib/modules/$version/"
  depmod -b "$root" "$version"
  cp "$LANE/modules.txt" "$root/etc/vipmesh-lane/modules"
  cp "$LANE/init.sh" "$root/init" && chmod 755 "$root/init"
  for f in /etc/protocols /etc/services /etc/ethertypes; do [ ! -f "$f" ] || cp "$f" "$root/etc/"; done
  echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  printf '127.0.0.1 localhost vipmesh-lane\n::1 localhost\n' >"$root/etc/hosts"
  echo 'hosts: files' >"$root/etc/nsswitch.conf"
  (cd "$root" && find . -mindepth 1 -printf '%P\n' | cpio -o -H newc -R 0:0 --quiet) | gzip >"$base.tmp"
  rm -rf "$root" "$CACHE"/base-*.cpio.gz && mv "$base.tmp" "$base"
fi

# --- project archive: every run, since dist changes with every build ------------------
stage=$CACHE/project-root && rm -rf "$stage" && mkdir -p "$stage/vipmesh/node_modules"
cp -a "$REPO/dist" "$REPO/package.json" "$REPO/fixtures" "$stage/vipmesh/"
# Production dependencies only: the lockfile marks every package that only development
# (the compiler, types, the import checker) pulls in as dev.
node -e '
  const lock = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  for (const [path, entry] of Object.entries(lock.packages ?? {}))
    if (/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && !entry.dev) console.log(path);
' "$REPO/package-lock.json" | while read -r m; do
  [ -d "$REPO/$m" ] || die "cannot build: $m is in package-lock.json but not installed (run npm ci)"
  mkdir -p "$(dirname "$stage/vipmesh/$m")" && cp -a "$REPO/$m" "$stage/vipmesh/$m"
done
(cd "$stage" && find vipmesh | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$CACHE/project.cpio.gz"
rm -rf "$stage"

cp "$kdir/vmlinuz" "$CACHE/vmlinuz"
cat "$base" "$CACHE/project.cpio.gz" >"$CACHE/initrd.img"
say "built: kernel $version, $(du -h "$base" | cut -f1) base, $(du -h "$CACHE/project.cpio.gz" | cut -f1) project"
