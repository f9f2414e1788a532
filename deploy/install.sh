#!/usr/bin/env bash
# Installs ds01-controller: binaries, the systemd unit, default specs (never overwriting an
# admin's edits), directories, logrotate, tmpfiles.d, sysusers.d, shell completion, docs and
# monitoring files. Idempotent: a second run leaves the same tree.
#
#   deploy/install.sh                  build (if needed) and install into /
#   DESTDIR=/tmp/root deploy/install.sh  stage into a directory (packaging, tests)
#
# Environment: DESTDIR (default empty), PREFIX (/usr), BINDIR (where the built binaries are;
# default target/release, built with `cargo build --release` when missing), ENABLE=1 to
# enable and start the service (only without DESTDIR).
set -euo pipefail
cd "$(dirname "$0")/.."

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr}"
BINDIR="${BINDIR:-target/release}"
UNITDIR="${PREFIX}/lib/systemd/system"

say() { printf 'ds01 install: %s\n' "$*"; }

if [ ! -x "$BINDIR/ds01-controller" ] || [ ! -x "$BINDIR/ds01ctl" ]; then
  say "building release binaries"
  cargo build --release --locked -p ds01-controller -p ds01ctl
fi

# install FILE to PATH with MODE, only when the content or mode differs (keeps mtimes stable).
put() {
  local mode="$1" source="$2" target="$DESTDIR$3"
  if [ -f "$target" ] && cmp -s "$source" "$target" && [ "$(stat -c %a "$target")" = "${mode#0}" ]; then
    return
  fi
  install -D -m "$mode" "$source" "$target"
}

# An admin-editable file: installed when absent; when the admin changed it, ours goes next to
# it as FILE.dist and theirs stays.
put_config() {
  local source="$1" target="$DESTDIR$2"
  if [ ! -e "$target" ]; then
    install -D -m 0644 "$source" "$target"
  elif ! cmp -s "$source" "$target"; then
    put 0644 "$source" "$2.dist"
    say "kept your $2; the shipped version is $2.dist"
  fi
}

directory() {
  local mode="$1" path="$DESTDIR$2"
  install -d -m "$mode" "$path"
  chmod "$mode" "$path"
}

put 0755 "$BINDIR/ds01-controller" "$PREFIX/bin/ds01-controller"
put 0755 "$BINDIR/ds01ctl" "$PREFIX/bin/ds01ctl"
put 0644 deploy/systemd/ds01-controller.service "$UNITDIR/ds01-controller.service"
put 0644 deploy/tmpfiles/ds01.conf "$PREFIX/lib/tmpfiles.d/ds01.conf"
put 0644 deploy/sysusers/ds01.conf "$PREFIX/lib/sysusers.d/ds01.conf"

directory 0755 /etc/ds01
directory 0755 /etc/ds01/specs
for spec in specs/*.yaml; do
  put_config "$spec" "/etc/ds01/specs/$(basename "$spec")"
done
put_config deploy/logrotate/ds01-controller /etc/logrotate.d/ds01-controller
put_config deploy/profile.d/ds01-notices.sh /etc/profile.d/ds01-notices.sh

directory 0750 /var/lib/ds01
directory 0750 /var/log/ds01

completion="$(mktemp)"
trap 'rm -f "$completion"' EXIT
"$BINDIR/ds01ctl" completion bash >"$completion"
put 0644 "$completion" "$PREFIX/share/bash-completion/completions/ds01ctl"
"$BINDIR/ds01ctl" man >"$completion"
put 0644 "$completion" "$PREFIX/share/man/man1/ds01ctl.1"

for doc in README.md docs/specs.md docs/operations.md docs/decisions.md; do
  put 0644 "$doc" "$PREFIX/share/doc/ds01-controller/$(basename "$doc")"
done
for file in deploy/prometheus/* deploy/grafana/*; do
  put 0644 "$file" "$PREFIX/share/ds01-controller/$(basename "$(dirname "$file")")/$(basename "$file")"
done

if [ -z "$DESTDIR" ]; then
  getent group ds01-admin >/dev/null || groupadd --system ds01-admin
  chgrp ds01-admin /var/log/ds01
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "${ENABLE:-0}" = 1 ]; then
      systemctl enable --now ds01-controller.service
    else
      say "run: systemctl enable --now ds01-controller"
    fi
  fi
fi
say "done${DESTDIR:+ (staged in $DESTDIR)}"
