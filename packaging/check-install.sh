#!/usr/bin/env bash
# Runs install.sh in a throwaway Debian 12 root (packaging/test-root.sh)
# the way a self-hoster would: a --dry-run that changes nothing; a run
# that stops cleanly where KumoMTA's repository cannot be reached; an
# unattended run that installs the .deb, Dovecot (from Debian's archive)
# and configures everything; a second run that changes nothing; then
# --uninstall and --uninstall --purge-data. systemd does not run in a
# chroot, so no service is started (install.sh says so); KumoMTA is a
# stand-in package with the layout of KumoMTA's own (its repository is not
# reachable here). Needs root and Debian's archive.
#
#   packaging/check-install.sh [DEB]   [default: built by build-packages.sh]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

# shellcheck source=packaging/test-root.sh
. packaging/test-root.sh
[ "$(id -u)" -eq 0 ] || fail "must run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || fail "debootstrap is missing (scripts/test-packages.txt installs it)"

start_root_cache
deb="${1:-$(./packaging/build-packages.sh --deb-only | tail -n 1)}"
make_root
mkdir -p "$root/root/inboxgrove"
cp install.sh "$root/root/inboxgrove/"
cp "$deb" "$root/root/inboxgrove/inboxgrove.deb"

# What a run may have changed: every file's type, mode, owner, size and
# mtime outside the kernel's and apt's scratch space.
snapshot() {
    (cd "$root" && find . -xdev \( -path ./proc -o -path ./tmp -o -path ./var/cache/apt \
        -o -path ./var/log \) -prune -o -printf '%p %y %m %u %g %s %T@\n' | sort)
}
# install.sh in the root, unattended (no terminal); its output is kept.
# The outbound probe is pointed at a port nothing listens on: this
# machine has no way out either.
installer() {
    local log="$1"
    shift
    LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin INBOXGROVE_OUTBOUND_PROBE=127.0.0.1 \
        chroot "$root" /root/inboxgrove/install.sh --hostname mail.grove.test "$@" \
        </dev/null >"$root/tmp/$log" 2>&1
}
expect() {
    grep -qF -- "$2" "$root/tmp/$1" || fail "$1 does not say '$2':"$'\n'"$(cat "$root/tmp/$1")"
}
check_mode() {
    local got
    got="$(in_root stat -c '%U:%G %a' "$1" 2>/dev/null)" || fail "$1 is missing"
    [ "$got" = "$2" ] || fail "$1 is $got, not $2"
}

# ---------------------------------------------------------------- dry run
before="$(snapshot)"
installer dry-run.log --dry-run --package /root/inboxgrove/inboxgrove.deb ||
    fail "--dry-run exited $?:"$'\n'"$(cat "$root/tmp/dry-run.log")"
expect dry-run.log "would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold /root/inboxgrove/inboxgrove.deb"
expect dry-run.log "would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd"
expect dry-run.log "would run: curl -fsSL https://openrepo.kumomta.com/kumomta-ubuntu-22/public.gpg"
expect dry-run.log "would run: apt-get install -y kumomta"
expect dry-run.log "would run: runuser -u inboxgrove -- /usr/bin/inboxgrove --config /etc/inboxgrove/inboxgrove.toml init"
expect dry-run.log "systemd is not running here"
expect dry-run.log "nothing was changed"
[ "$(snapshot)" = "$before" ] || fail "--dry-run changed the root:"$'\n'"$(diff <(echo "$before") <(snapshot) | head -n 20)"
say "--dry-run prints each step (the package, Dovecot, KumoMTA's repository, init) and changes nothing"

# A failed host check changes nothing either.
if installer bad-host.log --yes --hostname localhost --package /root/inboxgrove/inboxgrove.deb; then
    fail "a host name that is not fully qualified was accepted"
fi
expect bad-host.log "is not a fully qualified name"
[ "$(snapshot)" = "$before" ] || fail "a failed host check changed the root"
say "a failed host check (mail host 'localhost') exits 1 and changes nothing"

# ---------------------------------------------------- KumoMTA unreachable
status=0
INBOXGROVE_KUMO_REPO=http://127.0.0.1:9 installer offline.log --yes \
    --package /root/inboxgrove/inboxgrove.deb || status=$?
[ "$status" = 3 ] || fail "with KumoMTA's repository unreachable install.sh exited $status, not 3:"$'\n'"$(cat "$root/tmp/offline.log")"
expect offline.log "KumoMTA could not be installed"
expect offline.log "  apt-get install -y kumomta"
[ -x "$root/usr/bin/inboxgrove" ] || fail "the steps before KumoMTA's were not kept"
[ ! -e "$root/etc/apt/sources.list.d/kumomta.list" ] || fail "a half-configured KumoMTA repository was left"
[ ! -e "$root/var/lib/inboxgrove/master.key" ] || fail "configuration ran past the step that stopped"
say "KumoMTA's repository unreachable: exit 3, the steps left printed, inboxgrove and Dovecot kept, nothing configured past it"

# ------------------------------------------------- KumoMTA, as packaged
# A stand-in with the layout of KumoMTA's own .deb (assets/build-deb.sh
# and assets/kumomta.service in its source): user and group kumod, its
# directories, the unit, /opt/kumomta/sbin/kumod.
standin="$(mktemp -d)"
mkdir -p "$standin/DEBIAN" "$standin/opt/kumomta/sbin" "$standin/opt/kumomta/share" \
    "$standin/usr/lib/systemd/system"
cat >"$standin/DEBIAN/control" <<'EOF'
Package: kumomta
Version: 2026.08.04.000000.3ebc1e85
Architecture: amd64
Maintainer: InboxGrove tests <tests@inboxgrove.invalid>
Description: stand-in for KumoMTA's package layout (check-install.sh)
EOF
cat >"$standin/DEBIAN/preinst" <<'EOF'
#!/bin/sh
getent group kumod >/dev/null || groupadd --system kumod
getent passwd kumod >/dev/null || useradd --system -g kumod -d /var/spool/kumod -s /sbin/nologin kumod
for d in /opt/kumomta/etc /opt/kumomta/etc/policy; do install -d -m 755 -o kumod -g kumod "$d"; done
for d in /var/spool/kumomta /var/log/kumomta /opt/kumomta/etc/dkim; do install -d -m 2770 -o kumod -g kumod "$d"; done
EOF
cat >"$standin/DEBIAN/postinst" <<'EOF'
#!/bin/sh
[ -f /opt/kumomta/etc/policy/init.lua ] || cp /opt/kumomta/share/minimal-init.lua /opt/kumomta/etc/policy/init.lua
EOF
chmod 0755 "$standin/DEBIAN/preinst" "$standin/DEBIAN/postinst"
printf '#!/bin/sh\necho "stand-in kumod: KumoMTA is not installed in this test root" >&2\nexit 1\n' \
    >"$standin/opt/kumomta/sbin/kumod"
chmod 0755 "$standin/opt/kumomta/sbin/kumod"
echo "-- KumoMTA's minimal policy (stand-in)" >"$standin/opt/kumomta/share/minimal-init.lua"
kumomta_unit >"$standin/usr/lib/systemd/system/kumomta.service"
dpkg-deb --root-owner-group --build "$standin" "$root/root/kumomta.deb" >/dev/null
rm -rf "$standin"
in_root dpkg -i /root/kumomta.deb >/dev/null 2>&1 || fail "the stand-in kumomta package did not install"
say "installed a stand-in kumomta package (KumoMTA's layout: user kumod, /opt/kumomta, kumomta.service)"

# ------------------------------------------------------- unattended run
installer first.log --yes --package /root/inboxgrove/inboxgrove.deb ||
    fail "the unattended run exited $?:"$'\n'"$(cat "$root/tmp/first.log")"
config=/etc/inboxgrove/inboxgrove.toml
grep -qx 'hostname = "mail.grove.test"' "$root$config" || fail "$config does not name the mail host"
grep -qx 'kumo_http_url = "http://127.0.0.1:8000"' "$root$config" || fail "$config does not set kumo_http_url"
grep -qx 'certificates = "acme"' "$root$config" || fail "$config does not ask for ACME certificates"
grep -qx 'acme_email = "admin@grove.test"' "$root$config" || fail "$config gives the CA no contact"
check_mode "$config" "root:inboxgrove 640"
check_mode /var/lib/inboxgrove "inboxgrove:inboxgrove 700"
check_mode /var/lib/inboxgrove/master.key "inboxgrove:inboxgrove 600"
check_mode /var/lib/inboxgrove/initial-admin-password "inboxgrove:inboxgrove 600"
grep -q '^email: admin@grove.test' "$root/var/lib/inboxgrove/initial-admin-password" ||
    fail "the first admin is not admin@grove.test"
expect first.log "one-time password is in /var/lib/inboxgrove/initial-admin-password"
expect first.log "admin UI: http://127.0.0.1:8080/"
say "settings name the mail host; the data dir is initialised; the first admin's password is in a 0600 file and the output says where"

policy=/opt/kumomta/etc/policy/inboxgrove
check_mode "$policy/inboxgrove.json" "root:kumod 640"
check_mode "$policy/inboxgrove.secret" "root:kumod 640"
cmp -s "$root$policy/inboxgrove.secret" "$root/var/lib/inboxgrove/kumo.secret" ||
    fail "KumoMTA's secret is not the data dir's kumo.secret"
json="$root$policy/inboxgrove.json"
python3 - "$json" <<'EOF' || fail "inboxgrove.json does not hold the settings the server uses"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["control_url"] == "http://127.0.0.1:8081/kumo/v1", s
assert s["mail_root"] == "/var/lib/inboxgrove-mail", s
assert s["control_secret_file"] == "/opt/kumomta/etc/policy/inboxgrove/inboxgrove.secret", s
assert s["http_listen"] == "127.0.0.1:8000", s
assert s["hostname"] == "mail.grove.test", s
assert s["tls_certificate"] == "/var/lib/inboxgrove-tls/self-signed/cert.pem", s
EOF
# Until a certificate is issued KumoMTA presents the self-signed pair, which
# kumod (group inboxgrove-tls through the drop-in) must be able to read.
check_mode /var/lib/inboxgrove-tls/self-signed "inboxgrove:inboxgrove-tls 2750"
check_mode /var/lib/inboxgrove-tls/self-signed/key.pem "inboxgrove:inboxgrove-tls 640"
say "KumoMTA's inboxgrove.json (root:kumod 0640) is rendered from the server's settings and its secret is kumo.secret"

# shellcheck disable=SC2016 # the backquotes are the file's own text
grep -q 'Rendered by `inboxgrove dovecot-config`' "$root/etc/dovecot/dovecot.conf" ||
    fail "/etc/dovecot/dovecot.conf is not the rendered one"
[ -f "$root/etc/dovecot/dovecot.conf.before-inboxgrove" ] || fail "Debian's dovecot.conf was not kept aside"
check_mode /etc/dovecot/inboxgrove.secret "root:dovecot 640"
cmp -s "$root/etc/dovecot/inboxgrove.secret" "$root/var/lib/inboxgrove/dovecot.secret" ||
    fail "Dovecot's secret is not the data dir's dovecot.secret"
cmp -s "$root/etc/dovecot/inboxgrove.secret" "$root/var/lib/inboxgrove/kumo.secret" &&
    fail "Dovecot got KumoMTA's credential"
doveconf="$(in_root doveconf -n 2>&1)" || fail "Dovecot refuses the rendered configuration:"$'\n'"$doveconf"
grep -q 'checkpassword' <<<"$doveconf" || fail "doveconf -n shows no checkpassword passdb"
say "Dovecot (Debian's dovecot-imapd) parses the rendered dovecot.conf (doveconf -n); its own credential is root:dovecot 0640; Debian's file is kept aside"
expect first.log "not started (systemd is not running): inboxgrove.service"

# ---------------------------------------------------- second run: no-op
after_first="$(snapshot)"
installer second.log --yes --package /root/inboxgrove/inboxgrove.deb ||
    fail "the second run exited $?:"$'\n'"$(cat "$root/tmp/second.log")"
expect second.log "nothing to change"
[ "$(snapshot)" = "$after_first" ] ||
    fail "the second run changed the root:"$'\n'"$(diff <(echo "$after_first") <(snapshot) | head -n 20)"
say "a second run changes nothing (every file's mode, owner, size and mtime the same)"

# -------------------------------------------------------------- uninstall
installer uninstall.log --uninstall --yes || fail "--uninstall exited $?:"$'\n'"$(cat "$root/tmp/uninstall.log")"
[ ! -e "$root/usr/bin/inboxgrove" ] || fail "--uninstall left the binary"
[ -f "$root/var/lib/inboxgrove/master.key" ] || fail "--uninstall deleted the data"
[ -d "$root/var/lib/inboxgrove-mail" ] || fail "--uninstall deleted the mail root"
[ ! -e "$root$policy/inboxgrove.secret" ] || fail "--uninstall left KumoMTA's copy of the secret"
grep -q 'Rendered by' "$root/etc/dovecot/dovecot.conf" && fail "--uninstall left InboxGrove's dovecot.conf"
expect uninstall.log "kept: /var/lib/inboxgrove (data)"
say "--uninstall: package, credentials and dovecot.conf gone (Debian's back); data and mail kept"
installer purge.log --uninstall --purge-data --yes || fail "--uninstall --purge-data exited $?"
for gone in /var/lib/inboxgrove /var/lib/inboxgrove-mail /var/lib/inboxgrove-tls; do
    [ ! -e "$root$gone" ] || fail "--purge-data left $gone"
done
say "--uninstall --purge-data: data, mail and certificates gone"

say "all checks passed in $((SECONDS - started)) s"
