#!/usr/bin/env bash
# InboxGrove's installer: from a fresh VPS to sending in one command.
#
#   sudo ./install.sh [options]
#
# It checks the host, installs the inboxgrove package (a given .deb/.rpm,
# else one built from this checkout), Dovecot from the distribution and
# KumoMTA from KumoMTA's own repository, writes every configuration from
# InboxGrove's settings (`inboxgrove kumo-config`, `inboxgrove
# dovecot-config`, the scoped control credentials), starts the services in
# order and prints where the admin UI and its one-time password are.
# Running it again changes only what differs; a second run changes nothing.
#
# Options:
#   --hostname NAME      the mail host (KumoMTA's banner, the PTR to match)
#                        [default: hostname -f]
#   --admin-email EMAIL  the first admin [default: admin@<hostname's domain>]
#   --public-url URL     where people reach the admin UI [default: none];
#                        an https:// URL is served on 443 with its ACME
#                        certificate (public_tls = "acme")
#   --self-signed        no ACME CA: self-signed certificates (sequencers
#                        refuse them; for a host without public DNS)
#   --package FILE       install this inboxgrove .deb/.rpm instead of building
#   --no-kumomta         don't install KumoMTA (configure it if present)
#   --no-dovecot         don't install Dovecot (configure it if present)
#   --yes, --unattended  ask nothing; fail where an answer is missing
#   --dry-run            print every step, change nothing
#   --uninstall          stop and remove the package; data and mail are kept
#   --purge-data         with --uninstall: also delete data, mail and certs
#   -h, --help           this text
#
# Supported: Debian 12/13, Ubuntu 22.04/24.04, RHEL 9 and its rebuilds.
# Exit status: 0 done, 1 a check failed (nothing was changed), 2 bad usage,
# 3 stopped cleanly at a step this host cannot do (see the message; the
# steps before it are kept and a second run continues).
set -euo pipefail
cd "$(dirname "$0")"

mail_host="" admin_email="" public_url="" package=""
dry_run=0 unattended=0 self_signed=0 no_kumo=0 no_dovecot=0 uninstall=0 purge_data=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hostname) mail_host="${2:?--hostname needs a name}"; shift 2 ;;
        --admin-email) admin_email="${2:?--admin-email needs an address}"; shift 2 ;;
        --public-url) public_url="${2:?--public-url needs a URL}"; shift 2 ;;
        --package) package="${2:?--package needs a file}"; shift 2 ;;
        --self-signed) self_signed=1; shift ;;
        --no-kumomta) no_kumo=1; shift ;;
        --no-dovecot) no_dovecot=1; shift ;;
        --yes|--unattended) unattended=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        --purge-data) purge_data=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -t 0 ] || unattended=1
if [ "$purge_data" = 1 ] && [ "$uninstall" = 0 ]; then
    echo "install.sh: --purge-data goes with --uninstall" >&2
    exit 2
fi

# Overridable for tests and mirrors; KumoMTA's repository is KumoMTA's own.
KUMO_REPO="${INBOXGROVE_KUMO_REPO:-https://openrepo.kumomta.com}"
OUTBOUND_PROBE="${INBOXGROVE_OUTBOUND_PROBE:-gmail-smtp-in.l.google.com}"

CONFIG=/etc/inboxgrove/inboxgrove.toml
DATA=/var/lib/inboxgrove
POLICY_DIR=/opt/kumomta/etc/policy/inboxgrove
BIN=/usr/bin/inboxgrove
changes=0
restart_inboxgrove=0 restart_dovecot=0 restart_kumo=0

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
step() { printf '\n== %s\n' "$*"; }
# Stops without a trace of half a step: the message says what is left.
stop() {
    printf '\ninstall.sh stopped: %s\n' "$1" >&2
    printf 'The steps above are done and kept; run install.sh again to go on.\n' >&2
    exit 3
}

# Runs a command that changes the system (or, with --dry-run, prints it).
run() {
    if [ "$dry_run" = 1 ]; then
        say "would run: $*"
    else
        say "+ $*"
        # Explicit: set -e does not apply where a caller tests the result.
        "$@" || return
    fi
    changes=$((changes + 1))
}

# put DEST MODE OWNER:GROUP: stdin becomes DEST unless DEST already holds
# exactly that with that mode and owner; returns 0 when it changed DEST.
put() {
    local dest="$1" mode="$2" owner="$3" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    if [ -f "$dest" ] && cmp -s "$tmp" "$dest" &&
        [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ]; then
        rm -f "$tmp"
        say "unchanged: $dest"
        return 1
    fi
    if [ "$dry_run" = 1 ]; then
        say "would write: $dest ($mode $owner)"
        rm -f "$tmp"
    else
        install -D -m "$mode" -o "${owner%:*}" -g "${owner#*:}" "$tmp" "$dest"
        rm -f "$tmp"
        say "wrote: $dest ($mode $owner)"
    fi
    changes=$((changes + 1))
    return 0
}

# ---------------------------------------------------------------- the host

# shellcheck source=/dev/null
. /etc/os-release 2>/dev/null || { echo "install.sh: no /etc/os-release; unsupported system" >&2; exit 1; }
family=""
case "${ID:-}:${VERSION_ID:-}" in
    debian:12*|debian:13*|ubuntu:22.04|ubuntu:24.04) family=deb ;;
    rhel:9*|rocky:9*|almalinux:9*|centos:9*|ol:9*) family=rpm ;;
esac
systemd=0
[ -d /run/systemd/system ] && systemd=1


check_host() {
    step "Checking this host"
    local fails=() warns=() answer holder port public_ip ptr w f
    if [ "$(id -u)" != 0 ]; then
        if [ "$dry_run" = 1 ]; then
            warns+=("not root: a real run needs root (sudo ./install.sh)")
        else
            fails+=("not root: run it as root (sudo ./install.sh)")
        fi
    fi
    [ -n "$family" ] ||
        fails+=("${PRETTY_NAME:-this system} is not supported: use Debian 12/13, Ubuntu 22.04/24.04 or RHEL 9 (or a rebuild of it)")
    [ "$systemd" = 1 ] ||
        warns+=("systemd is not running here (a container or chroot?): everything is installed and configured, nothing is started")

    if [ -z "$mail_host" ]; then
        mail_host="$(hostname -f 2>/dev/null || hostname)"
        if [ "$unattended" = 0 ]; then
            read -r -p "Mail host name (its PTR must name it) [$mail_host]: " answer
            mail_host="${answer:-$mail_host}"
        fi
    fi
    mail_host="$(printf '%s' "$mail_host" | tr '[:upper:]' '[:lower:]')"
    case "$mail_host" in
        *.*) ;;
        *) fails+=("the mail host name '$mail_host' is not a fully qualified name: pass --hostname mail.example.com") ;;
    esac
    if [ -z "$admin_email" ]; then
        admin_email="admin@${mail_host#*.}"
        if [ "$unattended" = 0 ]; then
            read -r -p "First admin's email [$admin_email]: " answer
            admin_email="${answer:-$admin_email}"
        fi
    fi

    # Ports: free, or held by the programs this installs.
    if command -v ss >/dev/null; then
        for port in 25 587 993 80 443; do
            holder="$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -n 1 || true)"
            case "$holder" in
                ""|kumod|dovecot|inboxgrove) ;;
                *) fails+=("port $port is taken by $holder: stop and disable it (e.g. systemctl disable --now $holder)") ;;
            esac
        done
    else
        warns+=("ss is missing (package iproute2), so ports 25/587/993/80/443 were not checked")
    fi

    # Outbound port 25: many VPS providers block it until asked.
    if ! timeout 5 bash -c "exec 3<>/dev/tcp/$OUTBOUND_PROBE/25" 2>/dev/null; then
        warns+=("outbound port 25 to $OUTBOUND_PROBE did not connect: most VPS providers block it until you ask them to open it; no mail leaves until then")
    fi

    # The public address and its PTR, forward-confirmed.
    public_ip="$(ip -o route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true)"
    case "$public_ip" in
        "") warns+=("no IPv4 route out: the public address could not be found") ;;
        10.*|192.168.*|172.1[6-9].*|172.2[0-9].*|172.3[01].*|100.6[4-9].*|100.[7-9][0-9].*|100.1[01][0-9].*|100.12[0-7].*|127.*)
            warns+=("this host's address $public_ip is private (NAT): set public_ipv4 in $CONFIG to the address the world sees") ;;
        *)
            ptr="$(getent hosts "$public_ip" | awk '{print $2}' | head -n 1 || true)"
            if [ -z "$ptr" ]; then
                warns+=("$public_ip has no PTR record: ask your VPS provider to set it to $mail_host")
            elif [ "$ptr" != "$mail_host" ]; then
                warns+=("the PTR of $public_ip is $ptr, not $mail_host: set it to $mail_host at your VPS provider")
            elif ! getent ahostsv4 "$mail_host" | grep -q "^$public_ip "; then
                warns+=("$mail_host does not resolve to $public_ip: add its A record")
            fi ;;
    esac

    # The clock: DKIM signatures, TOTP and certificates depend on it.
    if command -v timedatectl >/dev/null && [ "$systemd" = 1 ]; then
        [ "$(timedatectl show -p NTPSynchronized --value 2>/dev/null)" = yes ] ||
            warns+=("the clock is not synchronised: turn NTP on (timedatectl set-ntp true)")
    fi

    for w in "${warns[@]}"; do warn "$w"; done
    if [ "${#fails[@]}" -gt 0 ]; then
        for f in "${fails[@]}"; do printf 'fail: %s\n' "$f" >&2; done
        echo "install.sh: nothing was changed" >&2
        exit 1
    fi
    say "host checks passed (${#warns[@]} warnings); mail host $mail_host, admin $admin_email"
    if [ "$unattended" = 0 ] && [ "$dry_run" = 0 ]; then
        read -r -p "Install and configure InboxGrove, Dovecot and KumoMTA on this host? [Y/n] " answer
        case "$answer" in ""|y|Y|yes) ;; *) echo "install.sh: nothing was changed"; exit 1 ;; esac
    fi
}

# ---------------------------------------------------------------- the package

# The installed version of package $1, or nothing.
installed_version() {
    if [ "$family" = deb ]; then
        dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
            sed -n 's/^installed //p' || true
    else
        rpm -q --qf '%{VERSION}-%{RELEASE}\n' "$1" 2>/dev/null | grep -v 'not installed' || true
    fi
}

install_package() {
    step "InboxGrove"
    if [ -z "$package" ]; then
        if [ "$dry_run" = 1 ]; then
            say "would build the packages from this checkout: packaging/build-packages.sh"
            say "would install the inboxgrove .$family"
            changes=$((changes + 1))
            return
        fi
        command -v cargo >/dev/null ||
            stop "cargo is not installed, so the package cannot be built from this checkout: pass --package inboxgrove.$family (from a release), or install Rust (https://rustup.rs)"
        say "building the packages from this checkout (packaging/build-packages.sh)"
        package="$(packaging/build-packages.sh | grep "\.$family\$" | tail -n 1)"
        [ -n "$package" ] || stop "packaging/build-packages.sh made no .$family"
    fi
    [ -f "$package" ] || { echo "install.sh: $package: no such file" >&2; exit 2; }
    package="$(realpath "$package")"
    local want have
    if [ "$family" = deb ]; then
        want="$(dpkg-deb -f "$package" Version)"
    else
        want="$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$package")"
    fi
    have="$(installed_version inboxgrove)"
    if [ "$have" = "$want" ]; then
        say "unchanged: inboxgrove $have is installed"
        return
    fi
    if [ "$family" = deb ]; then
        # --force-confold: an edited inboxgrove.toml is kept on upgrade.
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            -o Dpkg::Options::=--force-confold "$package"
    else
        run dnf install -y "$package"
    fi
    restart_inboxgrove=1
}

# ---------------------------------------------------------------- Dovecot

install_dovecot() {
    step "Dovecot (IMAP)"
    local pkg=dovecot-imapd
    [ "$family" = rpm ] && pkg=dovecot
    if [ -n "$(installed_version "$pkg")" ]; then
        say "unchanged: $pkg $(installed_version "$pkg") is installed"
    elif [ "$no_dovecot" = 1 ]; then
        warn "Dovecot is not installed (--no-dovecot): IMAP will not answer until it is"
    elif [ "$family" = deb ]; then
        run apt-get update
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg"
    else
        run dnf install -y "$pkg"
    fi
}

# ---------------------------------------------------------------- KumoMTA

# KumoMTA's repository, as its docs configure it
# (docs/userguide/installation/linux.md in KumoCorp/kumomta). KumoMTA
# builds for Ubuntu 20.04/22.04 and Rocky; Debian 12/13 and Ubuntu 24.04
# take the Ubuntu 22.04 build (it needs glibc 2.35; they have 2.36+).
kumo_commands() {
    if [ "$family" = deb ]; then
        cat <<STEPS
apt-get install -y curl gnupg ca-certificates
curl -fsSL $KUMO_REPO/kumomta-ubuntu-22/public.gpg | gpg --yes --dearmor -o /usr/share/keyrings/kumomta.gpg
chmod 644 /usr/share/keyrings/kumomta.gpg
curl -fsSL $KUMO_REPO/files/kumomta-ubuntu22.list -o /etc/apt/sources.list.d/kumomta.list
apt-get update
apt-get install -y kumomta
STEPS
    else
        cat <<STEPS
dnf -y install dnf-plugins-core
dnf config-manager --add-repo $KUMO_REPO/files/kumomta-rocky.repo
dnf install -y kumomta
STEPS
    fi
}

install_kumomta() {
    step "KumoMTA (SMTP)"
    if [ -x /opt/kumomta/sbin/kumod ]; then
        say "unchanged: KumoMTA is installed (/opt/kumomta/sbin/kumod)"
        return
    fi
    if [ "$no_kumo" = 1 ]; then
        warn "KumoMTA is not installed (--no-kumomta): no mail is sent or received until it is; install it and run install.sh again"
        return
    fi
    local probe="$KUMO_REPO/files/kumomta-ubuntu22.list"
    [ "$family" = rpm ] && probe="$KUMO_REPO/files/kumomta-rocky.repo"
    if [ "$dry_run" = 1 ]; then
        kumo_commands | sed 's/^/would run: /'
        changes=$((changes + 1))
        return
    fi
    if ! command -v curl >/dev/null; then
        if [ "$family" = deb ]; then
            run env DEBIAN_FRONTEND=noninteractive apt-get install -y curl gnupg ca-certificates
        else
            run dnf install -y curl
        fi
    fi
    if ! curl -fsS --max-time 15 -o /dev/null "$probe" 2>/dev/null; then
        say "KumoMTA's repository ($KUMO_REPO) cannot be reached from this host. These are the steps left:"
        kumo_commands | sed 's/^/  /'
        stop "KumoMTA could not be installed: $probe is not reachable. Allow this host to reach it (or run the steps above yourself) and run install.sh again"
    fi
    local line
    while IFS= read -r line; do
        run bash -c "$line"
    done < <(kumo_commands)
    restart_kumo=1
}

# ---------------------------------------------------------------- configuration

# set_key FILE KEY VALUE: KEY set to VALUE (already TOML-quoted) in the
# TOML file; an existing or commented-out line is replaced, else one is
# added.
set_key() {
    awk -v key="$2" -v line="$2 = $3" '
        BEGIN { done = 0 }
        !done && ($0 ~ "^" key " *=" || $0 ~ "^# *" key " *=") { print line; done = 1; next }
        { print }
        END { if (!done) print line }
    ' "$1" >"$1.set" && mv "$1.set" "$1"
}

configure() {
    step "Configuration"
    local next
    next="$(mktemp)"
    if [ -f "$CONFIG" ]; then
        cp "$CONFIG" "$next"
        set_key "$next" hostname "\"$mail_host\""
        set_key "$next" admin_email "\"$admin_email\""
        set_key "$next" kumo_http_url '"http://127.0.0.1:8000"'
        # Real certificates for the mail hosts (sequencers refuse
        # self-signed ones, and KumoMTA will not deliver between two hosted
        # domains without them), from Let's Encrypt unless told otherwise.
        if [ "$self_signed" = 0 ]; then
            set_key "$next" certificates '"acme"'
            set_key "$next" acme_email "\"$admin_email\""
        fi
        if [ -n "$public_url" ]; then
            set_key "$next" public_url "\"$public_url\""
            case "$public_url" in
                https://*)
                    set_key "$next" public_tls '"acme"'
                    set_key "$next" listen '"[::]:443"' ;;
            esac
        fi
        put "$CONFIG" 0640 root:inboxgrove <"$next" && restart_inboxgrove=1
    elif [ "$dry_run" = 1 ]; then
        say "would set hostname, admin_email, kumo_http_url and the certificate settings in $CONFIG (the package installs it)"
        changes=$((changes + 1))
    else
        stop "$CONFIG is missing: reinstall the inboxgrove package"
    fi

    if [ -f "$DATA/master.key" ]; then
        say "unchanged: data dir $DATA is initialised"
    elif [ "$dry_run" = 1 ]; then
        say "would run: runuser -u inboxgrove -- $BIN --config $CONFIG init"
        changes=$((changes + 1))
    else
        # Not a terminal: a generated password goes to a file, not this log.
        run runuser -u inboxgrove -- "$BIN" --config "$CONFIG" init | cat ||
            stop "inboxgrove init could not prepare the data dir (see above)"
    fi

    if [ "$dry_run" = 1 ] && [ ! -x "$BIN" ]; then
        say "would render $POLICY_DIR/inboxgrove.json (inboxgrove kumo-config) and /etc/dovecot/dovecot.conf (inboxgrove dovecot-config), and copy their credentials"
        rm -f "$next"
        return
    fi
    if getent group kumod >/dev/null; then
        runuser -u inboxgrove -- "$BIN" --config "$CONFIG" kumo-config >"$next" ||
            stop "inboxgrove kumo-config could not render the policy's settings (see above)"
        put "$POLICY_DIR/inboxgrove.json" 0640 root:kumod <"$next" && restart_kumo=1
        put "$POLICY_DIR/inboxgrove.secret" 0640 root:kumod <"$DATA/kumo.secret" && restart_kumo=1
    else
        say "KumoMTA is not installed: its policy settings are written when it is"
    fi
    if getent group dovecot >/dev/null && [ -d /etc/dovecot ]; then
        runuser -u inboxgrove -- "$BIN" --config "$CONFIG" dovecot-config >"$next" ||
            stop "inboxgrove dovecot-config could not render dovecot.conf (see above)"
        # shellcheck disable=SC2016 # the backquotes are the file's own text
        if [ -f /etc/dovecot/dovecot.conf ] && [ ! -e /etc/dovecot/dovecot.conf.before-inboxgrove ] &&
            ! grep -q 'Rendered by `inboxgrove dovecot-config`' /etc/dovecot/dovecot.conf; then
            run cp -p /etc/dovecot/dovecot.conf /etc/dovecot/dovecot.conf.before-inboxgrove
        fi
        put /etc/dovecot/dovecot.conf 0644 root:root <"$next" && restart_dovecot=1
        put /etc/dovecot/inboxgrove.secret 0640 root:dovecot <"$DATA/dovecot.secret" && restart_dovecot=1
    else
        say "Dovecot is not installed: dovecot.conf is written when it is"
    fi
    rm -f "$next"
}

# ---------------------------------------------------------------- services

# Enables and starts unit $1 (restarts it when $2 is 1 and it runs).
service() {
    local unit="$1" restart="$2"
    if [ "$systemd" = 0 ]; then
        say "not started (systemd is not running): $unit"
        return
    fi
    systemctl cat "$unit" >/dev/null 2>&1 || { say "not installed: $unit"; return; }
    systemctl is-enabled -q "$unit" 2>/dev/null || run systemctl enable "$unit"
    if ! systemctl is-active -q "$unit"; then
        run systemctl start "$unit"
    elif [ "$restart" = 1 ]; then
        run systemctl restart "$unit"
    else
        say "unchanged: $unit is running"
    fi
}

start_services() {
    step "Services"
    [ "$systemd" = 1 ] && [ "$changes" -gt 0 ] && [ "$dry_run" = 0 ] && systemctl daemon-reload
    # InboxGrove first: Dovecot's logins and KumoMTA's policy ask it.
    service inboxgrove.service "$restart_inboxgrove"
    if [ "$systemd" = 1 ] && [ "$dry_run" = 0 ]; then
        local control
        control="$(sed -n 's/^control_listen *= *"\(.*\)"/\1/p' "$CONFIG")"
        control="${control:-127.0.0.1:8081}"
        for _ in $(seq 1 30); do
            timeout 1 bash -c "exec 3<>/dev/tcp/${control%:*}/${control##*:}" 2>/dev/null && break
            sleep 1
        done
    fi
    service dovecot.service "$restart_dovecot"
    service kumomta.service "$restart_kumo"
    # Renewed certificates reach Dovecot and KumoMTA through this watch
    # (InboxGrove itself may not reload them).
    service inboxgrove-tls-reload.path 0
}

report() {
    step "Done"
    if [ "$changes" = 0 ]; then
        say "nothing to change: this host is installed and configured as asked"
    elif [ "$dry_run" = 1 ]; then
        say "dry run: $changes steps would change this host; nothing was changed"
    else
        say "$changes changes made"
    fi
    local listen
    listen="$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$CONFIG" 2>/dev/null || true)"
    listen="${listen:-127.0.0.1:8080}"
    if [ -n "$public_url" ]; then
        say "admin UI: $public_url/"
    else
        say "admin UI: http://$listen/ on this host; from your machine: ssh -L ${listen##*:}:$listen root@$mail_host, then open http://127.0.0.1:${listen##*:}/"
    fi
    if [ -f "$DATA/initial-admin-password" ]; then
        say "the first admin's one-time password is in $DATA/initial-admin-password (sudo cat it; it is deleted when you change the password)"
    elif [ "$dry_run" = 0 ]; then
        say "the first admin already exists (reset a password: inboxgrove user set-password --email E)"
    fi
    if [ "$systemd" = 1 ] && [ "$dry_run" = 0 ]; then
        say "checking the installation (inboxgrove doctor):"
        "$BIN" --config "$CONFIG" doctor || say "doctor found something to fix: each line above says how"
    fi
}

# ---------------------------------------------------------------- uninstall

uninstall() {
    step "Uninstalling InboxGrove"
    [ "$(id -u)" = 0 ] || { echo "install.sh: run it as root" >&2; exit 1; }
    if [ "$purge_data" = 1 ] && [ "$unattended" = 0 ]; then
        read -r -p "Delete $DATA, /var/lib/inboxgrove-mail and /var/lib/inboxgrove-tls for good? [y/N] " answer
        case "$answer" in y|Y|yes) ;; *) echo "nothing deleted"; exit 1 ;; esac
    fi
    if [ "$systemd" = 1 ] && systemctl cat inboxgrove.service >/dev/null 2>&1; then
        run systemctl disable --now inboxgrove.service
    fi
    local f
    for f in /etc/dovecot/inboxgrove.secret "$POLICY_DIR/inboxgrove.json" "$POLICY_DIR/inboxgrove.secret"; do
        [ -e "$f" ] && run rm -f "$f"
    done
    if [ -e /etc/dovecot/dovecot.conf.before-inboxgrove ]; then
        run mv /etc/dovecot/dovecot.conf.before-inboxgrove /etc/dovecot/dovecot.conf
    fi
    if [ -n "$(installed_version inboxgrove)" ]; then
        if [ "$family" = deb ]; then
            run dpkg --purge inboxgrove
        else
            run dnf remove -y inboxgrove
        fi
    fi
    if [ "$purge_data" = 1 ]; then
        run rm -rf "$DATA" /var/lib/inboxgrove-mail /var/lib/inboxgrove-tls
    else
        say "kept: $DATA (data), /var/lib/inboxgrove-mail (mail), /var/lib/inboxgrove-tls (certificates); delete them with --uninstall --purge-data"
    fi
    say "KumoMTA and Dovecot stay installed; restart them (systemctl restart kumomta dovecot) to drop InboxGrove's settings"
}

# ---------------------------------------------------------------- main

if [ "$uninstall" = 1 ]; then
    uninstall
    exit 0
fi
check_host
install_package
install_dovecot
install_kumomta
configure
start_services
report
