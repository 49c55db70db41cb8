#!/usr/bin/env bash
# Installs InboxGrove on this machine as a systemd service:
#   /usr/bin/inboxgrove, /etc/inboxgrove/inboxgrove.toml, /var/lib/inboxgrove,
#   the `inboxgrove` system user and the inboxgrove.service unit.
#
#   sudo ./install.sh                  build the static binary from this checkout
#   sudo ./install.sh --binary PATH    install a binary built elsewhere
#
# Running it again upgrades the binary and keeps the config and data.
set -euo pipefail
cd "$(dirname "$0")"

binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo ./install.sh)" >&2
    exit 1
fi

if [ -z "$binary" ]; then
    command -v cargo >/dev/null || {
        echo "install.sh: cargo not found; install Rust or pass --binary PATH" >&2
        exit 1
    }
    binary="$(./packaging/build-static.sh | tail -n 1)"
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

install -m 0755 "$binary" /usr/bin/inboxgrove
sh packaging/scripts/postinst
install -d -m 0750 -o root -g inboxgrove /etc/inboxgrove
if [ ! -e /etc/inboxgrove/inboxgrove.toml ]; then
    install -m 0640 -o root -g inboxgrove packaging/inboxgrove.toml /etc/inboxgrove/inboxgrove.toml
fi
install -m 0644 packaging/inboxgrove.service /etc/systemd/system/inboxgrove.service

# Creates the master key, database and first admin; prints the admin's
# password once if it generated one.
runuser -u inboxgrove -- /usr/bin/inboxgrove --config /etc/inboxgrove/inboxgrove.toml init

# KumoMTA, when installed, gets the policy and a copy of the control secret
# it can read (the data dir itself stays private to inboxgrove).
policy_dir=/opt/kumomta/etc/policy
if getent group kumod >/dev/null && [ -d /opt/kumomta ]; then
    install -d -m 0755 "$policy_dir"
    install -m 0644 kumo-policy/init.lua "$policy_dir/init.lua"
    # InboxGrove's additions to KumoMTA's community shaping rules (the
    # policy's `shaping_file`; without it no egress path can be shaped).
    install -m 0644 kumo-policy/shaping.toml "$policy_dir/inboxgrove-shaping.toml"
    install -m 0640 -o root -g kumod /var/lib/inboxgrove/kumo.secret "$policy_dir/inboxgrove.secret"
    # The policy's settings, rendered from the server's own (control URL,
    # mail root, certificate, KumoMTA's HTTP listener), so they agree.
    if [ ! -e "$policy_dir/inboxgrove.json" ]; then
        if /usr/bin/inboxgrove --config /etc/inboxgrove/inboxgrove.toml kumo-config \
            --output "$policy_dir/inboxgrove.json"; then
            chgrp kumod "$policy_dir/inboxgrove.json"
        else
            echo "kumo-config could not render $policy_dir/inboxgrove.json; pass --hostname (see above) and run it again" >&2
        fi
    fi
    echo "KumoMTA policy installed in $policy_dir; restart kumomta"
fi

# Dovecot, when installed, gets its own credential: it may only check IMAP
# logins, never read DKIM keys or post events.
if getent group dovecot >/dev/null && [ -d /etc/dovecot ]; then
    install -m 0640 -o root -g dovecot /var/lib/inboxgrove/dovecot.secret /etc/dovecot/inboxgrove.secret
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now inboxgrove.service
    systemctl restart inboxgrove.service
    echo "inboxgrove is running: systemctl status inboxgrove; logs: journalctl -u inboxgrove"
else
    echo "systemd is not running here; start it with: runuser -u inboxgrove -- inboxgrove --config /etc/inboxgrove/inboxgrove.toml serve"
fi
