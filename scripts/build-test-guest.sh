#!/usr/bin/env bash
# Build Loom's tiny test guest from Debian packages only: the host's
# linux-image-*-cloud-amd64 kernel, a busybox-static initramfs whose init
# prints a marker line to the serial console, and a bootable raw disk (an
# MBR, one FAT partition, SYSLINUX) converted to qcow2.
#
#   scripts/build-test-guest.sh [OUTPUT_DIR]     (default .loom/guest)
#
# Prints the qcow2's path. Idempotent: the inputs (this script, kernel,
# modules, busybox, syslinux) are hashed and the image is rebuilt only when
# that hash changes. Needs no root and no loop devices (mtools writes the
# FAT file system, syslinux --offset installs into the partition).
#
# The guest prints, on every boot:
#   LOOM-GUEST-BOOT uuid=<smbios uuid>
#   LOOM-GUEST-METADATA <meta_data.json of a config drive, one line>   (if any)
#   LOOM-GUEST-READY hostname=<name> uuid=<uuid> addresses=<ip/len,...> config_drive=yes|no \
#     mem_mb=<MemTotal in MiB> cpus=<online CPUs> disks=<vda[:serial],...>
# Disks and NICs plugged in or out later each print a line:
#   LOOM-GUEST-DISK-ADDED name=<vdX> serial=<serial> sectors=<n>   LOOM-GUEST-DISK-REMOVED name=<vdX>
#   LOOM-GUEST-NIC-ADDED name=<ethN> mac=<mac> addresses=<DHCP's>  LOOM-GUEST-NIC-REMOVED name=<ethN>
# and on the way down "LOOM-GUEST-SHUTDOWN". Ctrl-Alt-Del reboots it, the
# ACPI power button powers it off (from the READY line on). With "loom.probe" on the kernel command
# line it prints "LOOM-GUEST-PROBE ok" and powers off at once (the driver's
# accelerator check boots it that way with -kernel/-initrd).
set -euo pipefail
cd "$(dirname "$0")/.."
script="$PWD/scripts/build-test-guest.sh"
out=$(realpath -m "${1:-${LOOM_GUEST_DIR:-.loom/guest}}")
image="$out/loom-test-guest.qcow2"

PACKAGES=(linux-image-cloud-amd64 busybox-static syslinux syslinux-common mtools dosfstools fdisk cpio qemu-utils)
MODULES=(virtio_pci virtio_blk virtio_net isofs button evdev)

if ! ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || ! command -v mcopy syslinux qemu-img >/dev/null; then
  ./scripts/system-packages.sh "${PACKAGES[@]}" >&2
fi
kernel=$(ls -v /boot/vmlinuz-*-cloud-amd64 | tail -n 1)
release=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$release
busybox=$(command -v busybox)
syslinux_dir=/usr/lib/syslinux
[ -f /usr/lib/SYSLINUX/mbr.bin ] && mbr=/usr/lib/SYSLINUX/mbr.bin || mbr=$syslinux_dir/mbr/mbr.bin

# The modules each wanted one needs, in load order (modules.dep lists a
# module's dependencies, deepest last).
module_files() {
  local m line
  for m in "${MODULES[@]}"; do
    line=$(grep -E "/$m\.ko(\.xz|\.zst)?:" "$moddir/modules.dep")
    # shellcheck disable=SC2086
    printf '%s\n' $(echo "${line#*:}" | tr ' ' '\n' | tac) "${line%%:*}"
  done | awk 'NF && !seen[$0]++'
}
mapfile -t modules < <(module_files)

inputs=$( { sha256sum "$script" "$kernel" "$busybox" "$mbr" "$(command -v syslinux)"
            for f in "${modules[@]}"; do sha256sum "$moddir/$f"; done; } | sha256sum | cut -d' ' -f1)
if [ -f "$image" ] && [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$inputs" ]; then
  echo "$image"
  exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The initramfs: busybox, the modules, an init that prints the marker.
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,mnt/config,lib/modules}
cp "$busybox" "$root/bin/busybox"
for f in "${modules[@]}"; do
  name=$(basename "$f")
  case "$name" in
    *.xz) xz -dc "$moddir/$f" >"$root/lib/modules/${name%.xz}" ;;
    *.zst) zstd -qdc "$moddir/$f" >"$root/lib/modules/${name%.zst}" ;;
    *) cp "$moddir/$f" "$root/lib/modules/$name" ;;
  esac
  echo "${name%.*}" | sed 's/\.ko$//' >>"$root/etc/modules"
done

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
/bin/busybox --install -s /sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec /sbin/init
EOF

cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/rc
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/shutdown
EOF

cat >"$root/etc/rc" <<'EOF'
#!/bin/sh
exec >/dev/ttyS0 2>&1
uuid=$(cat /sys/class/dmi/id/product_uuid 2>/dev/null || echo unknown)
if grep -qw loom.probe /proc/cmdline; then
  echo "LOOM-GUEST-PROBE ok"
  poweroff -f
fi
echo "LOOM-GUEST-BOOT uuid=$uuid"
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done </etc/modules
sleep 0.2  # let the block devices appear
hostname="loom-guest"
drive=no
for dev in /dev/vd? /dev/sr? /dev/sd?; do
  [ -b "$dev" ] || continue
  if mount -t iso9660 -o ro "$dev" /mnt/config 2>/dev/null; then
    if [ -f /mnt/config/openstack/latest/meta_data.json ]; then
      drive=yes
      meta=$(tr -d '\n' </mnt/config/openstack/latest/meta_data.json)
      echo "LOOM-GUEST-METADATA $meta"
      name=$(echo "$meta" | sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p')
      [ -n "$name" ] && hostname=$name
      break
    fi
    umount /mnt/config
  fi
done
hostname "$hostname"
ip link set lo up
for link in /sys/class/net/*; do
  name=${link##*/}
  [ "$name" = lo ] && continue
  ip link set "$name" up
  udhcpc -i "$name" -n -q -t 3 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1
done
/etc/power-button &
uevent /etc/hotplug &  # reports disks and NICs plugged in or out from now on
for _ in $(seq 50); do [ -e /tmp/power-button-ready ] && break; sleep 0.1; done
addresses=$(ip -o -4 addr show scope global | awk '{print $4}' | tr '\n' ',' | sed 's/,$//')
# What the guest was given: memory as the kernel counts it (MemTotal, a
# little under the flavor's RAM), online CPUs, and its virtio disks in
# order, each with its serial number if it has one.
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
cpus=$(grep -c '^processor' /proc/cpuinfo)
disks=$(for d in /sys/block/vd*; do [ -e "$d" ] || continue; s=$(cat "$d/serial" 2>/dev/null); echo "${d##*/}${s:+:$s}"; done | tr '\n' ',' | sed 's/,$//')
echo "LOOM-GUEST-READY hostname=$hostname uuid=$uuid addresses=$addresses config_drive=$drive mem_mb=$mem_mb cpus=$cpus disks=$disks"
EOF

cat >"$root/etc/power-button" <<'EOF'
#!/bin/sh
# Any event from the ACPI power button powers the guest off. The device is
# opened before "ready" is announced, so no press after the marker is lost.
for dev in /sys/class/input/event*; do
  if [ "$(cat "$dev/device/name" 2>/dev/null)" = "Power Button" ]; then
    exec 3<"/dev/input/${dev##*/}"
    touch /tmp/power-button-ready
    head -c 24 <&3 >/dev/null && echo "LOOM-GUEST-POWER-BUTTON" >/dev/ttyS0 && poweroff
  fi
done
touch /tmp/power-button-ready
EOF

cat >"$root/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" ;; esac
EOF

cat >"$root/etc/hotplug" <<'EOF'
#!/bin/sh
# Run for each kernel uevent (busybox uevent): hot-plugged disks and NICs
# on the serial console; a new NIC is brought up and asks for an address.
name=${DEVNAME:-$INTERFACE}
name=${name##*/}
case "$SUBSYSTEM/$ACTION/$DEVTYPE" in
  block/add/disk)
    echo "LOOM-GUEST-DISK-ADDED name=$name serial=$(cat "/sys/block/$name/serial" 2>/dev/null)" \
      "sectors=$(cat "/sys/block/$name/size" 2>/dev/null)" >/dev/ttyS0 ;;
  block/remove/disk) echo "LOOM-GUEST-DISK-REMOVED name=$name" >/dev/ttyS0 ;;
  net/add/*)
    ip link set "$INTERFACE" up
    udhcpc -i "$INTERFACE" -n -q -t 5 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1
    addresses=$(ip -o -4 addr show dev "$INTERFACE" scope global | awk '{print $4}' | tr '\n' ',' | sed 's/,$//')
    echo "LOOM-GUEST-NIC-ADDED name=$INTERFACE mac=$(cat "/sys/class/net/$INTERFACE/address")" \
      "addresses=$addresses" >/dev/ttyS0 ;;
  net/remove/*) echo "LOOM-GUEST-NIC-REMOVED name=$INTERFACE" >/dev/ttyS0 ;;
esac
EOF

cat >"$root/etc/shutdown" <<'EOF'
#!/bin/sh
echo "LOOM-GUEST-SHUTDOWN" >/dev/ttyS0
EOF
chmod 755 "$root/init" "$root/etc/rc" "$root/etc/power-button" "$root/etc/shutdown" "$root/etc/udhcpc.script" \
  "$root/etc/hotplug"
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible) | gzip -9n >"$work/initrd.gz"

cat >"$work/syslinux.cfg" <<'EOF'
SERIAL 0 115200
DEFAULT loom
TIMEOUT 0
PROMPT 0
LABEL loom
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 quiet panic=-1 rdinit=/init
EOF

# A raw disk: MBR, one bootable FAT16 partition from 1 MiB on.
kb=$(( ( $(stat -c %s "$kernel") + $(stat -c %s "$work/initrd.gz") ) / 1024 + 2048 ))
part_mb=$(( kb / 1024 + 2 ))
disk=$work/disk.raw
fs=$work/fs.img
truncate -s $(( (part_mb + 1) << 20 )) "$disk"
echo "2048,,6,*" | sfdisk --quiet "$disk"
dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
truncate -s $(( part_mb << 20 )) "$fs"
mkfs.fat -F 16 -n LOOMGUEST -i 4c4f4f4d --invariant "$fs" >/dev/null 2>&1 || mkfs.fat -F 16 -n LOOMGUEST "$fs" >/dev/null
export MTOOLS_SKIP_CHECK=1
mcopy -i "$fs" "$kernel" ::vmlinuz
mcopy -i "$fs" "$work/initrd.gz" ::initrd.gz
mcopy -i "$fs" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --install "$fs"
dd if="$fs" of="$disk" bs=1M seek=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 -c "$disk" "$work/guest.qcow2"
mv "$work/guest.qcow2" "$image"
echo "$inputs" >"$out/inputs.sha256"
echo "$image"
