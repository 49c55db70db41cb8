#!/usr/bin/env bash
# Builds the .deb and the .rpm (packaging/build-packages.sh) and checks
# what they do: the .deb is installed with dpkg into a throwaway Debian 12
# root (debootstrap --variant=minbase with systemd from Debian's archive, cached as a
# tarball under target/pkgroot/ so a second run skips it), upgraded,
# removed and purged there; the .rpm is read with rpm(8). Each check says
# what it checked; the first failure stops the run with a message and a
# non-zero exit. Needs root (debootstrap, chroot, file owners).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# shellcheck source=packaging/test-root.sh
. packaging/test-root.sh
[ "$(id -u)" -eq 0 ] || fail "must run as root (debootstrap, chroot, dpkg into the root)"
for tool in debootstrap rpm systemd-analyze file; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/test-packages.txt installs it)"
done

# ------------------------------------------------------------ the packages
start_root_cache

# Copies: cargo-deb replaces the .deb of an earlier build.
built="$(./packaging/build-packages.sh)" || fail "packaging/build-packages.sh failed"
mapfile -t built < <(tail -n 2 <<<"$built")
cp "${built[0]}" "${built[1]}" "$work/"
deb="$work/$(basename "${built[0]}")" rpm="$work/$(basename "${built[1]}")"
version="$(dpkg-deb -f "$deb" Version)"
# The same tree as a newer version: an upgrade.
rebuilt="$(./packaging/build-packages.sh --deb-version "${version%-*}-2" --deb-only)" ||
    fail "packaging/build-packages.sh --deb-version failed"
rebuilt="$(tail -n 1 <<<"$rebuilt")"
cp "$rebuilt" "$work/"
deb2="$work/$(basename "$rebuilt")"
# The binary they were built from (already built: cargo does nothing).
binary="$(./packaging/build-static.sh | tail -n 1)"
say "built $(basename "$deb"), $(basename "$deb2") and $(basename "$rpm")"

# What both packages install (cargo-deb adds the Debian copyright file).
expected_files="/etc/inboxgrove/inboxgrove.toml
/opt/kumomta/etc/policy/inboxgrove/init.lua
/opt/kumomta/etc/policy/inboxgrove/shaping.toml
/usr/bin/inboxgrove
/usr/lib/inboxgrove/tls-reload
/usr/lib/systemd/system/inboxgrove-tls-reload.path
/usr/lib/systemd/system/inboxgrove-tls-reload.service
/usr/lib/systemd/system/inboxgrove.service
/usr/lib/systemd/system/kumomta.service.d/inboxgrove.conf
/usr/share/doc/inboxgrove/README.md
/usr/share/inboxgrove/dovecot.conf.in"

# ------------------------------------------------------------------- .rpm
listed="$(rpm -qlp "$rpm" | sort)"
[ "$listed" = "$expected_files" ] ||
    fail "rpm -qlp lists other files:"$'\n'"$(diff <(echo "$expected_files") <(echo "$listed") || true)"
say "rpm -qlp lists exactly the $(echo "$listed" | wc -l) expected files"
[ "$(rpm -qp --configfiles "$rpm")" = /etc/inboxgrove/inboxgrove.toml ] ||
    fail "rpm config files: $(rpm -qp --configfiles "$rpm")"
# c: %config, n: noreplace.
flags="$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" |
    awk '$2 == "/etc/inboxgrove/inboxgrove.toml" { print $1 }')"
[ "$flags" = cn ] || fail "inboxgrove.toml is not %config(noreplace) in the rpm: '$flags'"
say "rpm -qp --configfiles: inboxgrove.toml, config(noreplace)"
modes="$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm")"
for want in "-rwxr-xr-x /usr/bin/inboxgrove" "-rw-r----- /etc/inboxgrove/inboxgrove.toml" \
    "-rw-r--r-- /usr/lib/systemd/system/kumomta.service.d/inboxgrove.conf"; do
    grep -qxF -- "$want" <<<"$modes" || fail "rpm modes: no '$want' in"$'\n'"$modes"
done
say "rpm file modes: binary 0755, settings 0640, units 0644"
# The scriptlets are the maintainer scripts.
scripts="$(rpm -qp --scripts "$rpm")"
scriptlet() {
    awk -v want="$1 scriptlet (using /bin/sh):" '/^[a-z]+ scriptlet/ { on = ($0 == want); next }
        on' <<<"$scripts"
}
for pair in postinstall:postinst preuninstall:prerm postuninstall:postrm; do
    # (rpm prints a blank line after each; $(...) drops trailing newlines)
    [ "$(scriptlet "${pair%%:*}")" = "$(cat "packaging/scripts/${pair#*:}")" ] ||
        fail "the rpm's ${pair%%:*} scriptlet is not packaging/scripts/${pair#*:}"
done
say "rpm -qp --scripts: %post, %preun and %postun are packaging/scripts/{postinst,prerm,postrm}"

# ------------------------------------------------------------------- .deb
contents="$(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$' | sort)"
[ "$contents" = "$(printf '%s\n/usr/share/doc/inboxgrove/copyright' "$expected_files" | sort)" ] ||
    fail "the .deb holds other files:"$'\n'"$contents"
say "the .deb holds the same files (and its copyright file)"
dpkg-deb -e "$deb" "$work/control"
for script in postinst prerm postrm; do
    cmp -s "$work/control/$script" "packaging/scripts/$script" ||
        fail "the .deb's $script is not packaging/scripts/$script"
done
[ ! -e "$work/control/preinst" ] || fail "the .deb has a preinst"
say "the .deb's maintainer scripts are the same packaging/scripts/{postinst,prerm,postrm}"
[ "$(dpkg-deb -f "$deb" Depends)" = passwd ] || fail "Depends: $(dpkg-deb -f "$deb" Depends)"
say "Depends: passwd only (the binary is static)"

# The root, from the cache (made while the packages were built).
make_root
cp "$deb" "$deb2" "$root/tmp/"

in_root dpkg -i "/tmp/$(basename "$deb")" >"$root/tmp/install.log" 2>&1 ||
    { cat "$root/tmp/install.log" >&2; fail "dpkg -i $(basename "$deb")"; }
say "dpkg -i $(basename "$deb") in a fresh Debian 12 root"

# System accounts: uid/gid below SYS_UID_MAX/SYS_GID_MAX, no login shell.
sys_max() { awk -v k="$1" '$1 == k { print $2 }' "$root/etc/login.defs"; }
uid_max="$(sys_max SYS_UID_MAX)" gid_max="$(sys_max SYS_GID_MAX)"
check_user() {
    local name="$1" home="$2" entry uid gid shell dir
    entry="$(in_root getent passwd "$name")" || fail "no user $name"
    IFS=: read -r _ _ uid gid _ dir shell <<<"$entry"
    [ "$uid" -le "${uid_max:-999}" ] || fail "$name has uid $uid, not a system uid"
    [ "$(in_root getent group "$gid" | cut -d: -f1)" = "$name" ] || fail "$name's primary group is not $name"
    [ "$shell" = /usr/sbin/nologin ] || fail "$name's shell is $shell"
    [ "$dir" = "$home" ] || fail "$name's home is $dir, not $home"
    say "user $name: system uid $uid, group $name, home $home, shell nologin"
}
check_group() {
    local gid
    gid="$(in_root getent group "$1" | cut -d: -f3)" || fail "no group $1"
    [ "$gid" -le "${gid_max:-999}" ] || fail "group $1 has gid $gid, not a system gid"
    say "group $1: system gid $gid"
}
check_user inboxgrove /var/lib/inboxgrove
check_user inboxgrove-mail /var/lib/inboxgrove-mail
check_group inboxgrove
check_group inboxgrove-mail
check_group inboxgrove-tls

# Owner, group and mode of what the package and its scripts made.
check_mode() {
    local got
    got="$(in_root stat -c '%U:%G %a' "$1" 2>/dev/null)" || fail "$1 is missing"
    [ "$got" = "$2" ] || fail "$1 is $got, not $2"
}
check_modes() {
    check_mode /var/lib/inboxgrove "inboxgrove:inboxgrove 700"
    check_mode /var/lib/inboxgrove-mail "root:inboxgrove-mail 2770"
    check_mode /var/lib/inboxgrove-tls "inboxgrove:inboxgrove-tls 2750"
    check_mode /etc/inboxgrove/inboxgrove.toml "root:inboxgrove 640"
    check_mode /usr/bin/inboxgrove "root:root 755"
    check_mode /usr/lib/inboxgrove/tls-reload "root:root 755"
    check_mode /opt/kumomta/etc/policy/inboxgrove/init.lua "root:root 644"
    check_mode /opt/kumomta/etc/policy/inboxgrove/shaping.toml "root:root 644"
    check_mode /usr/lib/systemd/system/kumomta.service.d/inboxgrove.conf "root:root 644"
    say "$1: data dir inboxgrove 0700, mail root root:inboxgrove-mail 2770, certificates inboxgrove:inboxgrove-tls 2750, settings root:inboxgrove 0640, policy and units 0644"
}
check_modes "after install"
conffiles="$(in_root dpkg-query -W -f='${Conffiles}\n' inboxgrove)"
grep -q '^ /etc/inboxgrove/inboxgrove.toml ' <<<"$conffiles" || fail "inboxgrove.toml is not a conffile: $conffiles"
say "inboxgrove.toml is a dpkg conffile"

# The binary is the static one that was built, and runs in the root.
cmp -s "$binary" "$root/usr/bin/inboxgrove" || fail "/usr/bin/inboxgrove is not $binary"
case "$(file -b "$root/usr/bin/inboxgrove")" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) fail "/usr/bin/inboxgrove is not static: $(file -b "$root/usr/bin/inboxgrove")" ;;
esac
ran="$(in_root /usr/bin/inboxgrove --version)" || fail "inboxgrove --version failed in the root"
[ "$ran" = "inboxgrove ${version%-*}" ] || fail "inboxgrove --version printed '$ran'"
say "/usr/bin/inboxgrove is the static build and runs: $ran"

# The units. KumoMTA is not in this root, so a stand-in kumomta.service is
# installed first: KumoMTA's own unit (assets/kumomta.service in its
# source), with a placeholder for the kumod its ExecStart names.
mkdir -p "$root/opt/kumomta/sbin"
printf '#!/bin/sh\n# stand-in for KumoMTA'"'"'s kumod (check-packages.sh)\nexit 0\n' >"$root/opt/kumomta/sbin/kumod"
chmod 0755 "$root/opt/kumomta/sbin/kumod"
kumomta_unit >"$root/usr/lib/systemd/system/kumomta.service"
say "installed a stand-in kumomta.service (KumoMTA's assets/kumomta.service) and kumod, as KumoMTA is not in the root"
verify() {
    local out
    out="$(systemd-analyze verify --root="$root" "$@" 2>&1)" || fail "systemd-analyze verify $*:"$'\n'"$out"
    [ -z "$out" ] || fail "systemd-analyze verify $* warns:"$'\n'"$out"
}
verify inboxgrove.service
say "systemd-analyze verify inboxgrove.service: clean"
verify inboxgrove-tls-reload.path inboxgrove-tls-reload.service
say "systemd-analyze verify inboxgrove-tls-reload.path and .service (the certificate reload watch): clean"
verify kumomta.service
merged="$(systemd-analyze --no-pager --root="$root" cat-config systemd/system/kumomta.service 2>/dev/null || true)"
grep -q '^SupplementaryGroups=inboxgrove-mail inboxgrove-tls$' <<<"$merged" ||
    fail "the drop-in is not part of kumomta.service:"$'\n'"$merged"
say "systemd-analyze verify kumomta.service with the drop-in: clean, and the drop-in applies"

# Upgrade: an edited inboxgrove.toml is kept.
echo '# edited by check-packages' >>"$root/etc/inboxgrove/inboxgrove.toml"
sed -i 's/^log = "info"$/log = "debug"/' "$root/etc/inboxgrove/inboxgrove.toml"
edited="$(sha256sum <"$root/etc/inboxgrove/inboxgrove.toml")"
uids_before="$(in_root id inboxgrove; in_root id inboxgrove-mail)"
in_root dpkg -i "/tmp/$(basename "$deb2")" >"$root/tmp/upgrade.log" 2>&1 ||
    { cat "$root/tmp/upgrade.log" >&2; fail "dpkg -i $(basename "$deb2") (upgrade)"; }
[ "$(in_root dpkg-query -W -f='${Version}' inboxgrove)" = "${version%-*}-2" ] || fail "the upgrade did not install"
[ "$(sha256sum <"$root/etc/inboxgrove/inboxgrove.toml")" = "$edited" ] ||
    fail "the upgrade changed the edited inboxgrove.toml"
[ "$(in_root id inboxgrove; in_root id inboxgrove-mail)" = "$uids_before" ] || fail "the upgrade changed the accounts"
say "upgrade to ${version%-*}-2: the edited inboxgrove.toml is kept, the accounts are the same"
check_modes "after the upgrade"

# What the server, KumoMTA and the installer leave there.
mkdir -p "$root/var/lib/inboxgrove-mail/grove.test/ada/Maildir/new"
echo data >"$root/var/lib/inboxgrove/inboxgrove.db"
echo mail >"$root/var/lib/inboxgrove-mail/grove.test/ada/Maildir/new/1.eml"
echo cert >"$root/var/lib/inboxgrove-tls/fullchain.pem"
echo '{}' >"$root/opt/kumomta/etc/policy/inboxgrove/inboxgrove.json"
echo 00 >"$root/opt/kumomta/etc/policy/inboxgrove/inboxgrove.secret"
kept=(/var/lib/inboxgrove/inboxgrove.db /var/lib/inboxgrove-mail/grove.test/ada/Maildir/new/1.eml
    /var/lib/inboxgrove-tls/fullchain.pem)

in_root dpkg --remove inboxgrove >"$root/tmp/remove.log" 2>&1 ||
    { cat "$root/tmp/remove.log" >&2; fail "dpkg --remove"; }
for gone in /usr/bin/inboxgrove /usr/lib/systemd/system/inboxgrove.service \
    /usr/lib/systemd/system/kumomta.service.d/inboxgrove.conf /opt/kumomta/etc/policy/inboxgrove/init.lua; do
    [ ! -e "$root$gone" ] || fail "$gone is still there after dpkg --remove"
done
for f in "${kept[@]}" /etc/inboxgrove/inboxgrove.toml; do
    [ -f "$root$f" ] || fail "dpkg --remove deleted $f"
done
grep -q 'kept /etc/inboxgrove' "$root/tmp/remove.log" || fail "dpkg --remove did not say what it kept"
check_mode /var/lib/inboxgrove-mail "root:inboxgrove-mail 2770"
say "dpkg --remove: binary, units and policy gone; settings, data, mail and certificates kept"

in_root dpkg --purge inboxgrove >"$root/tmp/purge.log" 2>&1 ||
    { cat "$root/tmp/purge.log" >&2; fail "dpkg --purge"; }
for gone in /etc/inboxgrove /opt/kumomta/etc/policy/inboxgrove; do
    [ ! -e "$root$gone" ] || fail "$gone is still there after dpkg --purge"
done
for f in "${kept[@]}"; do
    [ -f "$root$f" ] || fail "dpkg --purge deleted $f"
done
in_root getent passwd inboxgrove inboxgrove-mail >/dev/null || fail "dpkg --purge removed the accounts"
grep -q 'kept the data' "$root/tmp/purge.log" || fail "dpkg --purge did not say what it kept"
say "dpkg --purge: /etc/inboxgrove and the generated policy files gone; data dir, mail root, certificates and accounts kept"
sed -n 's/^inboxgrove: /  /p' "$root/tmp/purge.log"

say "all checks passed in $((SECONDS - started)) s"
