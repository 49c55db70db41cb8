# shellcheck shell=bash
# A throwaway Debian 12 root for the packaging checks (sourced by
# check-packages.sh and check-install.sh, whose messages say and fail
# print under the script's name):
# debootstrap --variant=minbase with systemd (whose units a service's
# default dependencies name, as on any host the package is for) from
# Debian's archive, made once and kept as a tarball under target/pkgroot/,
# then unpacked fresh for each check, with /proc mounted, and removed on
# exit. Needs root.
#
#   start_root_cache    begins the debootstrap in the background, if needed
#   make_root           waits for it and unpacks the root: $root, in $work
#   in_root CMD…        runs a command inside it

check="$(basename "$0" .sh)"
say() { echo "$check: $*"; }
fail() {
    echo "$check: FAILED: $*" >&2
    exit 1
}

mkdir -p target/pkgroot
work="$(mktemp -d target/pkgroot/work.XXXXXX)"
work="$(realpath "$work")"
root="$work/root"
cache=target/pkgroot/bookworm-minbase-systemd.tar
bootstrapping=""

make_cache() {
    local fresh
    fresh="$(mktemp -d target/pkgroot/bootstrap.XXXXXX)"
    if ! debootstrap --variant=minbase --include=systemd bookworm "$fresh" \
        http://deb.debian.org/debian >target/pkgroot/debootstrap.log 2>&1; then
        tail -n 20 target/pkgroot/debootstrap.log >&2
        rm -rf --one-file-system "$fresh"
        return 1
    fi
    tar -C "$fresh" -cf "$cache.partial" . && mv "$cache.partial" "$cache"
    rm -rf --one-file-system "$fresh"
}

# The debootstrap waits on the network: it runs while packages build.
start_root_cache() {
    if [ ! -s "$cache" ]; then
        say "debootstrap --variant=minbase --include=systemd bookworm (once; kept in $cache)"
        make_cache &
        bootstrapping=$!
    fi
}

make_root() {
    start_root_cache
    if [ -n "$bootstrapping" ]; then
        wait "$bootstrapping" || fail "debootstrap failed (target/pkgroot/debootstrap.log)"
        bootstrapping=""
    fi
    mkdir "$root"
    tar -C "$root" -xf "$cache"
    # The tarball's "." is debootstrap's mktemp dir (0700): a root only
    # root could enter, where no service user could run anything.
    chmod 0755 "$root"
    mount -t proc proc "$root/proc"
    # Package scripts must not start daemons in the root (they would run
    # on this machine's network): the chroot convention of policy-rc.d(8).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
}

remove_root() {
    # A debootstrap still running finishes, so the next run has its cache.
    if [ -n "$bootstrapping" ]; then wait "$bootstrapping" || true; fi
    if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
    # Nothing may be mounted below the root when it is deleted.
    if ! grep -qF " $work/" /proc/self/mounts; then
        rm -rf --one-file-system "$work"
    else
        echo "left $work: still mounted" >&2
    fi
}
trap remove_root EXIT

# KumoMTA's own unit (assets/kumomta.service in its source), for the
# stand-ins of KumoMTA's package: it is in no registry this machine reaches.
kumomta_unit() {
    cat <<'EOF'
[Unit]
Description=KumoMTA SMTP service
After=syslog.target network.target
Conflicts=sendmail.service exim.service postfix.service

[Service]
Type=simple
Restart=always
ExecStart=/opt/kumomta/sbin/kumod --policy /opt/kumomta/etc/policy/init.lua --user kumod

[Install]
WantedBy=multi-user.target
EOF
}

in_root() { LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" "$@" </dev/null; }
