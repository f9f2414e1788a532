#!/usr/bin/env bash
# Installs ds01-controller: binaries, the systemd unit, default specs (never overwriting an
# admin's edits), directories, logrotate, tmpfiles.d, sysusers.d, man pages, shell completions
# (bash, zsh, fish), docs and monitoring files. Idempotent: a second run leaves the same tree.
# The Debian package (deploy/debian/build-deb) is built from the tree this script stages.
#
# /var/lib/ds01 and /var/log/ds01 are created only when missing: an existing one keeps its
# owner and mode (the incumbent's tools may use them). The service is not enabled or started
# unless ENABLE=1: the shipped specs are in mode: dryRun, but review them first.
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

# Man pages carry the date of the release (the newest changelog entry), not of the build.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(date -d "$(sed -n 's/^ -- .*>  //p' deploy/debian/changelog | head -n 1)" +%s)"
  export SOURCE_DATE_EPOCH
fi

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

# A directory the controller shares with whatever was there before: created (MODE, GROUP
# outside DESTDIR) only when missing, as tmpfiles.d/ds01.conf does; never re-moded or re-owned.
shared_directory() {
  local mode="$1" group="$2" path="$DESTDIR$3"
  [ -d "$path" ] && return
  install -d "$path"
  [ -z "$DESTDIR" ] && chgrp "$group" "$path"
  chmod "$mode" "$path"
}

# install the output of a command, gzipped reproducibly when TARGET ends in .gz.
put_generated() {
  local mode="$1" target="$2"
  shift 2
  "$@" >"$generated"
  if [ "${target%.gz}" != "$target" ]; then
    gzip -9n <"$generated" >"$generated.gz"
    mv "$generated.gz" "$generated"
  fi
  put "$mode" "$generated" "$target"
}
generated="$(mktemp)"
trap 'rm -f "$generated"' EXIT

if [ -z "$DESTDIR" ]; then
  getent group ds01-admin >/dev/null || groupadd --system ds01-admin
fi

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

shared_directory 0750 root /var/lib/ds01
shared_directory 2750 ds01-admin /var/log/ds01

put_generated 0644 "$PREFIX/share/man/man1/ds01ctl.1.gz" "$BINDIR/ds01ctl" man
put_generated 0644 "$PREFIX/share/man/man8/ds01-controller.8.gz" "$BINDIR/ds01-controller" --man
put_generated 0644 "$PREFIX/share/bash-completion/completions/ds01ctl" "$BINDIR/ds01ctl" completion bash
# Debian's zsh reads vendor-completions (site-functions is for the local admin).
put_generated 0644 "$PREFIX/share/zsh/vendor-completions/_ds01ctl" "$BINDIR/ds01ctl" completion zsh
put_generated 0644 "$PREFIX/share/fish/vendor_completions.d/ds01ctl.fish" "$BINDIR/ds01ctl" completion fish

for doc in README.md docs/specs.md docs/operations.md docs/decisions.md deploy/debian/copyright; do
  put 0644 "$doc" "$PREFIX/share/doc/ds01-controller/$(basename "$doc")"
done
put_generated 0644 "$PREFIX/share/doc/ds01-controller/changelog.gz" cat deploy/debian/changelog
for file in deploy/prometheus/*.yml deploy/grafana/*; do
  put 0644 "$file" "$PREFIX/share/ds01-controller/$(basename "$(dirname "$file")")/$(basename "$file")"
done

if [ -z "$DESTDIR" ]; then
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
