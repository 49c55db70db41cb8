# shellcheck shell=bash
# A throwaway Debian 12 root for the packaging checks (sourced by
# check-packages.sh and check-install.sh): debootstrap --variant=minbase
# from Debian's archive, made once and kept as a tarball under
# target/pkgroot/, unpacked fresh for each check, /proc mounted, and
# removed on exit. Needs root.
#
# After `make_root NAME`: $root is the root's path and `in_root CMD…` runs
# a command inside it.

root=""
make_root() {
    local cache=target/pkgroot/bookworm-minbase.tar
    mkdir -p target/pkgroot
    if [ ! -s "$cache" ]; then
        say "debootstrap --variant=minbase bookworm (once; kept in $cache)"
        local fresh
        fresh="$(mktemp -d target/pkgroot/bootstrap.XXXXXX)"
        debootstrap --variant=minbase bookworm "$fresh" http://deb.debian.org/debian \
            >target/pkgroot/debootstrap.log 2>&1 ||
            { tail -n 20 target/pkgroot/debootstrap.log >&2; fail "debootstrap failed (target/pkgroot/debootstrap.log)"; }
        tar -C "$fresh" -cf "$cache.partial" . && mv "$cache.partial" "$cache"
        rm -rf --one-file-system "$fresh"
    fi
    root="$(mktemp -d "target/pkgroot/$1.XXXXXX")"
    root="$(cd "$root" && pwd)"
    trap remove_root EXIT
    tar -C "$root" -xf "$cache"
    mount -t proc proc "$root/proc"
    # Package scripts must not start daemons in the root (they would run
    # on this machine's network): the chroot convention of policy-rc.d(8).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
}

remove_root() {
    [ -n "$root" ] || return 0
    if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
    # Nothing may be mounted below the root when it is deleted.
    if ! grep -qF " $root/" /proc/self/mounts; then
        rm -rf --one-file-system "$root"
    else
        echo "left $root: still mounted" >&2
    fi
}

in_root() { LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" "$@" </dev/null; }
