# The machine that runs the VMs: what build-box.sh and tests/e2e/vagrant.sh need on it. Source this
# file; it defines functions only. Only the opt-in Vagrant scripts call them (never install-deps.sh or
# the default test run): they install Debian packages and start libvirt's daemons.

# The host's Debian packages: vagrant with Debian's vagrant-libvirt plugin (no `vagrant plugin install`
# from rubygems), libvirt, QEMU, and what build-box.sh uses to make the image.
CAIRN_VAGRANT_HOST_PACKAGES=(
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  dnsmasq-base debootstrap parted e2fsprogs rsync openssh-client
)

# vagrant_host_install: installs the missing packages of CAIRN_VAGRANT_HOST_PACKAGES (root; apt).
vagrant_host_install() {
  local pkg missing=()
  for pkg in "${CAIRN_VAGRANT_HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "vagrant host: missing packages ${missing[*]}; run as root to install them" >&2
    return 1
  fi
  echo "vagrant host: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# vagrant_host_libvirt: makes sure libvirtd and virtlogd run. Under systemd that is the packages'
# units; on a machine without systemd (a container-like CI VM) the daemons are started directly.
# /dev/kvm gets the mode udev would give it (root:kvm 0660), so QEMU running as libvirt-qemu can use it.
vagrant_host_libvirt() {
  if [[ -d /run/systemd/system ]]; then
    systemctl start virtlogd.socket libvirtd.service 2>/dev/null || systemctl start libvirtd
  else
    pgrep -x virtlogd >/dev/null || /usr/sbin/virtlogd -d
    pgrep -x libvirtd >/dev/null || /usr/sbin/libvirtd -d
  fi
  if [[ -c /dev/kvm ]] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
  local deadline=$((SECONDS + 30))
  until virsh -c qemu:///system version >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "vagrant host: libvirtd does not answer" >&2; return 1; }
    sleep 0.5
  done
}
