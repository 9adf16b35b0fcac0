#!/usr/bin/env bash
# Builds a Vagrant box for the libvirt provider from Debian's archive alone (no box download):
# debootstrap of bookworm with a kernel, EXTLINUX (BIOS boot), SSH, sudo, the vagrant user with Vagrant's
# insecure public key (from the host's vagrant package; vagrant swaps in a fresh key pair at the first
# `up`), DHCP on eth0 only (systemd-networkd; vagrant configures eth1, the private network, itself),
# and the packages Cairn's host-built binaries need at run time (fuse3, lxc, the libraries `ldd` names),
# so provisioning needs no network. /etc/machine-id is left empty, so each VM makes its own id at first
# boot and hence gets its own DHCP address (a shared id makes the three VMs ask for the same lease).
#
#   deploy/vagrant/build-box.sh [--add] [OUT.box]   (root; default /var/tmp/cairn-bookworm.box)
#     --add           then `vagrant box add --force --name cairn/bookworm OUT.box`
#   CAIRN_BIN_DIR=DIR also includes the packages of every library DIR's binaries link against
#   CAIRN_MIRROR      Debian mirror (default http://deb.debian.org/debian)
# Installs what it needs on this machine when missing (deploy/vagrant/host-setup.sh).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
add=0
if [[ ${1:-} == --add ]]; then add=1; shift; fi
OUT=${1:-/var/tmp/cairn-bookworm.box}
SIZE_GB=${CAIRN_BOX_SIZE_GB:-8}
MIRROR=${CAIRN_MIRROR:-http://deb.debian.org/debian}
[[ $(id -u) == 0 ]] || { echo "build-box.sh: run as root" >&2; exit 1; }
source "$HERE/host-setup.sh"
vagrant_host_install

# What the VMs run: systemd, SSH, sudo, networkd, rsync (vagrant's synced folders), and Cairn's runtime:
# FUSE (cairn-mount, unionmount), LXC (containers), busybox-static (the busybox image), the tools the
# workflow uses, and the shared libraries of the binaries (kept in step by the ldd pass below).
BOX_PACKAGES=(
  linux-image-amd64 extlinux syslinux-common openssh-server sudo systemd-sysv systemd-timesyncd dbus rsync ca-certificates
  udev kmod netbase iputils-ping fuse3 lxc busybox-static iproute2 nftables attr procps psmisc util-linux less
  libprotobuf32 libyaml-cpp0.7 libspdlog1.10 libfmt9 libfuse3-3 liblxc1 libssl3
)
if [[ -n ${CAIRN_BIN_DIR:-} ]]; then
  # Every library the binaries link against, mapped to its Debian package on this machine.
  mapfile -t libs < <(ldd "$CAIRN_BIN_DIR"/{clusterd,clusterctl,cairn-mount,unionmount} |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
  for lib in "${libs[@]}"; do
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) ||
      pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
    [[ -n $pkg ]] && BOX_PACKAGES+=("$pkg")
  done
fi
include=$(printf '%s\n' "${BOX_PACKAGES[@]}" | sort -u | paste -sd,)

WORK=$(mktemp -d /var/tmp/cairn-box-XXXXXX)
MNT="$WORK/root"
LOOP=""
# The debootstrapped tree is kept until the box is made, so a failure in a later step is retried in
# minutes instead of a new debootstrap (it is reused only for the same package list).
ROOTFS=${CAIRN_BOX_ROOTFS:-/var/tmp/cairn-box-rootfs}
cleanup() {
  local m
  for m in dev/pts dev proc sys ""; do
    if mountpoint -q "$MNT/$m" 2>/dev/null; then umount -l "$MNT/$m"; fi
  done
  if [[ -n $LOOP ]]; then losetup -d "$LOOP"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "build-box.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

started=$SECONDS
if [[ -f $ROOTFS/.cairn-include && $(cat "$ROOTFS/.cairn-include") == "$include" ]]; then
  echo "build-box.sh: reusing the debootstrapped tree in $ROOTFS"
else
  echo "build-box.sh: debootstrap bookworm into $ROOTFS with: $include"
  rm -rf "$ROOTFS"
  mkdir -p "$ROOTFS" /var/cache/cairn-box-debs
  debootstrap --variant=minbase --cache-dir=/var/cache/cairn-box-debs --include="$include" bookworm "$ROOTFS" \
    "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
  echo "$include" >"$ROOTFS/.cairn-include"
  echo "build-box.sh: debootstrap done in $((SECONDS - started)) s"
fi

# One bootable partition at 1 MiB, reached through a loop device at that offset (partition scanning of
# loop devices is not available everywhere). ext4 without 64bit/metadata_csum, which EXTLINUX reads.
echo "build-box.sh: a ${SIZE_GB} GiB disk with one ext4 partition"
truncate -s "${SIZE_GB}G" "$WORK/disk.raw"
parted -s "$WORK/disk.raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on 2>/dev/null
LOOP=$(losetup --show -f -o $((1024 * 1024)) "$WORK/disk.raw")
mkfs.ext4 -q -L root -O ^64bit,^metadata_csum "$LOOP"
mkdir -p "$MNT"
mount "$LOOP" "$MNT"
cp -a "$ROOTFS/." "$MNT/"
rm -f "$MNT/.cairn-include"
for m in dev dev/pts proc sys; do mount --bind "/$m" "$MNT/$m"; done

echo "LABEL=root / ext4 errors=remount-ro 0 1" >"$MNT/etc/fstab"
echo cairn-box >"$MNT/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$MNT/etc/hosts"
# DHCP on eth0 only (the management network vagrant reaches the VM by). Any other link is left to
# vagrant, which writes 50-vagrant-ethN.network; a catch-all here would take eth1 first.
cat >"$MNT/etc/systemd/network/90-eth0-dhcp.network" <<NET
[Match]
Name=eth0
[Network]
DHCP=yes
NET
chroot "$MNT" systemctl enable systemd-networkd ssh
# systemd-networkd-wait-online stays on: at a reboot, network-online (which clusterd.service waits
# for) then means eth1's fixed address, configured by vagrant at the first `up`, is there.
chroot "$MNT" useradd -m -s /bin/bash vagrant
echo "vagrant:vagrant" | chroot "$MNT" chpasswd
echo "vagrant ALL=(ALL) NOPASSWD: ALL" >"$MNT/etc/sudoers.d/vagrant"
chmod 0440 "$MNT/etc/sudoers.d/vagrant"
mkdir -p "$MNT/home/vagrant/.ssh"
pubkey=${CAIRN_BOX_PUBKEY:-}
for candidate in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
  /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
  [[ -z $pubkey && -f $candidate ]] && pubkey=$candidate
done
[[ -f $pubkey ]] || { echo "build-box.sh: no vagrant.pub (set CAIRN_BOX_PUBKEY)" >&2; exit 1; }
cp "$pubkey" "$MNT/home/vagrant/.ssh/authorized_keys"
chmod 700 "$MNT/home/vagrant/.ssh"
chmod 600 "$MNT/home/vagrant/.ssh/authorized_keys"
chroot "$MNT" chown -R vagrant:vagrant /home/vagrant/.ssh
echo 'UseDNS no' >"$MNT/etc/ssh/sshd_config.d/vagrant.conf"
# SSH host keys are made at first boot, so the VMs do not share them: Ed25519 and ECDSA only, since
# an RSA key took over 11 minutes under software emulation on a loaded machine (`ssh-keygen -A`).
rm -f "$MNT"/etc/ssh/ssh_host_*
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n' >"$MNT/etc/ssh/sshd_config.d/hostkeys.conf"
cat >"$MNT/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Make SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
[Install]
WantedBy=multi-user.target
UNIT
# lxc-net (a NAT bridge with dnsmasq for LXC) is not used: Cairn's containers have no network by default.
chroot "$MNT" systemctl mask lxc-net.service
chroot "$MNT" systemctl enable ssh-hostkeys.service
# BIOS boot with EXTLINUX: syslinux's MBR code, then the partition's boot record and /boot/extlinux.
kver=$(basename "$(ls "$MNT"/boot/vmlinuz-* | sort -V | tail -1)")
kver=${kver#vmlinuz-}
mkdir -p "$MNT/boot/extlinux"
cat >"$MNT/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
TIMEOUT 10
LABEL debian
  LINUX /boot/vmlinuz-$kver
  INITRD /boot/initrd.img-$kver
  APPEND root=LABEL=root ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0
CONF
chroot "$MNT" extlinux --install /boot/extlinux >"$WORK/boot.log" 2>&1 || { cat "$WORK/boot.log" >&2; exit 1; }
# Empty machine-id: systemd makes a new one at first boot (so each VM's DHCP client id differs).
: >"$MNT/etc/machine-id"
rm -f "$MNT/var/lib/dbus/machine-id"
chroot "$MNT" apt-get clean
rm -rf "$MNT"/var/lib/apt/lists/*

cp "$MNT/usr/lib/syslinux/mbr/mbr.bin" "$WORK/mbr.bin"
for m in dev/pts dev proc sys; do umount "$MNT/$m"; done
umount "$MNT"
losetup -d "$LOOP"
LOOP=""
dd if="$WORK/mbr.bin" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none

echo "build-box.sh: packing the libvirt box"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/box.img"
rm -f "$WORK/disk.raw"
cat >"$WORK/metadata.json" <<JSON
{"provider": "libvirt", "format": "qcow2", "virtual_size": $SIZE_GB}
JSON
cat >"$WORK/Vagrantfile" <<'VF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "kvm"
  end
end
VF
# No compression: the qcow2 holds only used blocks, and gzip would cost minutes of CPU.
tar -C "$WORK" -cf "$OUT.tmp" metadata.json Vagrantfile box.img
mv "$OUT.tmp" "$OUT"
rm -rf "$ROOTFS"
echo "build-box.sh: $OUT ($(du -h "$OUT" | cut -f1), $((SECONDS - started)) s)"
if ((add)); then
  vagrant box add --force --name cairn/bookworm "$OUT"
else
  echo "build-box.sh: add it with: vagrant box add --name cairn/bookworm $OUT"
fi
