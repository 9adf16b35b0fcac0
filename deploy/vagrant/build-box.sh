#!/usr/bin/env bash
# Builds a Vagrant box for the libvirt provider from Debian's archive alone (no box download):
# debootstrap of bookworm with a kernel, GRUB, SSH, the vagrant user (Vagrant's well-known insecure key,
# replaced by vagrant at the first `up`), DHCP on every ethernet link (systemd-networkd), and every
# package of deploy/install-deps.sh, so provisioning needs no network. /etc/machine-id is left empty,
# so each VM gets its own id at first boot and hence its own DHCP address (a shared id makes the three
# VMs ask for the same lease).
#
#   deploy/vagrant/build-box.sh [OUT.box]      (root; default /var/tmp/cairn-bookworm.box; ~10 min)
#   vagrant box add --name cairn/bookworm OUT.box
# Needs: debootstrap, qemu-utils, parted, e2fsprogs, curl (BIOS boot with GRUB, no EFI partition).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-/var/tmp/cairn-bookworm.box}
SIZE_GB=${CAIRN_BOX_SIZE_GB:-8}
MIRROR=${CAIRN_MIRROR:-http://deb.debian.org/debian}
[[ $(id -u) == 0 ]] || { echo "build-box.sh: run as root" >&2; exit 1; }
for tool in debootstrap qemu-img parted mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "build-box.sh: $tool missing (apt-get install debootstrap qemu-utils parted)" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/cairn-box-XXXXXX)
MNT="$WORK/root"
LOOP=""
cleanup() {
  for m in dev/pts dev proc sys ""; do mountpoint -q "$MNT/$m" && umount -l "$MNT/$m"; done
  [[ -n $LOOP ]] && losetup -d "$LOOP"
  rm -rf "$WORK"
}
trap cleanup EXIT

# The packages Cairn needs, read from the project's own install script (one list, never two).
mapfile -t cairn_packages < <(bash -c 'source <(sed -n "/^PACKAGES=(/,/^)/p" "$1"); printf "%s\n" "${PACKAGES[@]}"' _ \
  "$REPO/deploy/install-deps.sh")
include="linux-image-amd64,grub-pc,openssh-server,sudo,systemd-sysv,dbus,rsync,ca-certificates,$(IFS=,; echo "${cairn_packages[*]}")"

echo "build-box.sh: a ${SIZE_GB} GiB disk with one ext4 partition"
truncate -s "${SIZE_GB}G" "$WORK/disk.raw"
parted -s "$WORK/disk.raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
LOOP=$(losetup --show -fP "$WORK/disk.raw")
mkfs.ext4 -q -L root "${LOOP}p1"
mkdir -p "$MNT"
mount "${LOOP}p1" "$MNT"

echo "build-box.sh: debootstrap bookworm (with ${#cairn_packages[@]} packages of install-deps.sh)"
debootstrap --include="$include" bookworm "$MNT" "$MIRROR"
for m in dev dev/pts proc sys; do mount --bind "/$m" "$MNT/$m"; done

cat >"$MNT/etc/fstab" <<FSTAB
LABEL=root / ext4 errors=remount-ro 0 1
FSTAB
cat >"$MNT/etc/systemd/network/50-dhcp.network" <<NET
[Match]
Name=en* eth*
[Network]
DHCP=yes
NET
chroot "$MNT" systemctl enable systemd-networkd ssh >/dev/null
chroot "$MNT" useradd -m -s /bin/bash vagrant
echo "vagrant:vagrant" | chroot "$MNT" chpasswd
echo "vagrant ALL=(ALL) NOPASSWD: ALL" >"$MNT/etc/sudoers.d/vagrant"
mkdir -p "$MNT/home/vagrant/.ssh"
# Vagrant's published insecure public key (vagrant swaps in a fresh key pair at the first `up`), or
# the public key file named by CAIRN_BOX_PUBKEY.
if [[ -n ${CAIRN_BOX_PUBKEY:-} ]]; then
  cp "$CAIRN_BOX_PUBKEY" "$MNT/home/vagrant/.ssh/authorized_keys"
else
  curl -fsSL https://raw.githubusercontent.com/hashicorp/vagrant/main/keys/vagrant.pub \
    >"$MNT/home/vagrant/.ssh/authorized_keys"
fi
chroot "$MNT" chown -R vagrant:vagrant /home/vagrant/.ssh
chmod 700 "$MNT/home/vagrant/.ssh"
chmod 600 "$MNT/home/vagrant/.ssh/authorized_keys"
echo "GRUB_CMDLINE_LINUX=\"console=ttyS0 net.ifnames=0\"" >>"$MNT/etc/default/grub"
chroot "$MNT" grub-install --target=i386-pc "$LOOP" >/dev/null
chroot "$MNT" update-grub >/dev/null 2>&1
# Empty machine-id: systemd makes a new one at first boot (so each VM's DHCP client id differs).
: >"$MNT/etc/machine-id"
rm -f "$MNT/var/lib/dbus/machine-id"
chroot "$MNT" apt-get clean

for m in dev/pts dev proc sys; do umount "$MNT/$m"; done
umount "$MNT"
losetup -d "$LOOP"
LOOP=""

echo "build-box.sh: packing the libvirt box"
qemu-img convert -O qcow2 "$WORK/disk.raw" "$WORK/box.img"
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
tar -C "$WORK" -czf "$OUT" metadata.json Vagrantfile box.img
echo "build-box.sh: $OUT; add it with: vagrant box add --name cairn/bookworm $OUT"
