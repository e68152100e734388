#!/usr/bin/env bash
# install.sh: put instore on a Debian 12 / Raspberry Pi OS box (or into a staging root).
#
# Layout it makes, each part only when missing or different, so a second run changes nothing:
#   /opt/instore/releases/<version>/venv   one virtualenv per release, never changed once complete
#   /opt/instore/releases/<version>/deploy  that release's units, templates and scripts (a link)
#   /opt/instore/current -> releases/<v>    switched atomically (new link renamed over the old)
#   /opt/instore/bin/{install.sh,instore-upgrade}, /usr/local/sbin/instore-upgrade,
#   /usr/local/bin/instore -> /opt/instore/current/venv/bin/instore
#   /etc/systemd/system/instore-*.service   the current release's units
#   /etc/instore/instore.toml               written from the commented template only if missing
#   /var/lib/instore                        the database and keys, owned by the instore user
# Run with --help for the options.
set -euo pipefail
umask 022

PROG=install.sh
USER_NAME=instore
STATE_DIR=/var/lib/instore
# Files every release must carry beside its code (the portal's gunicorn settings, the units...).
REQUIRED_DEPLOY_FILES=(gunicorn.conf.py instore.toml.example install.sh instore_upgrade.py
    systemd/instore-portal.service)

usage() {
    cat <<'EOF'
Usage: install.sh [--from WHEEL|SDIST|DIR] [--version V] [--root DIR]
                  [--wheelhouse DIR] [--deps-from VENV] [--switch|--no-switch]
       install.sh --activate V [--root DIR]

Installs instore release V into /opt/instore/releases/V with its own virtualenv, the systemd
units, the instore user, /etc/instore/instore.toml (only if missing) and /var/lib/instore.
The first release installed becomes current; a later one is installed beside the current one:
switch to it with `instore-upgrade V`, which migrates the database and rolls back on failure.

  --from SRC        a wheel, an sdist or a source checkout (default: the checkout holding this
                    script)
  --version V       the version SRC must be (default: read from SRC)
  --root DIR        install under DIR instead of / (tests, images); no systemctl calls
  --wheelhouse DIR  install offline: dependencies only from the wheels in DIR
                    (make one with `pip wheel -w DIR .` on a machine with network)
  --deps-from VENV  share the dependencies already installed in the virtualenv VENV instead of
                    installing them (tests and trials; a box uses the default or --wheelhouse)
  --switch          make V current even if another release is current (no migration: prefer
                    instore-upgrade)
  --no-switch       never change current (instore-upgrade installs this way)
  --activate V      only install release V's units and scripts and make it current
  --python PY       the Python 3.11+ that creates the virtualenv (default: python3)
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 2
}
say() { echo "$*"; }

ROOT=""
SRC=""
VERSION=""
WHEELHOUSE=""
DEPS_FROM=""
SWITCH=auto
ACTIVATE=""
PYTHON=python3
while [ $# -gt 0 ]; do
    case "$1" in
        --from) SRC="${2:?--from needs a wheel, sdist or directory}"; shift 2 ;;
        --version) VERSION="${2:?--version needs a version}"; shift 2 ;;
        --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a directory}"; shift 2 ;;
        --deps-from) DEPS_FROM="${2:?--deps-from needs a virtualenv}"; shift 2 ;;
        --switch) SWITCH=yes; shift ;;
        --no-switch) SWITCH=no; shift ;;
        --activate) ACTIVATE="${2:?--activate needs a version}"; shift 2 ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory; create it first"
    ROOT="$(cd "$ROOT" && pwd)"
    [ "$ROOT" != / ] || ROOT=""
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 …), or give --root DIR to install into a staging directory"
fi

OPT="$ROOT/opt/instore"
RELEASES="$OPT/releases"
UNIT_DIR="$ROOT/etc/systemd/system"
CONFIG="$ROOT/etc/instore/instore.toml"
CHANGED=0
UNITS_CHANGED=0

changed() {
    CHANGED=1
    say "$*"
}

# systemctl only on the real root of a machine booted with systemd.
have_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# --- small idempotent steps --------------------------------------------------------------------
OWNERS=1   # 0 when owners cannot be set (not root, or a staging root without /etc/passwd)
INSTORE_UID=""
INSTORE_GID=""

ensure_dir() { # path mode [uid gid]
    local path=$1 mode=$2 uid=${3:-} gid=${4:-}
    if [ ! -d "$path" ]; then
        mkdir -p "$path"
        changed "created $path"
    fi
    if [ "$(stat -c %a "$path")" != "${mode#0}" ]; then
        chmod "$mode" "$path"
    fi
    if [ -n "$uid" ] && [ "$OWNERS" = 1 ] && [ "$(stat -c %u:%g "$path")" != "$uid:$gid" ]; then
        chown "$uid:$gid" "$path"
    fi
}

install_file() { # src dst mode: copy only when the content or mode differs
    local src=$1 dst=$2 mode=$3
    if [ -f "$dst" ] && cmp -s "$src" "$dst" && [ "$(stat -c %a "$dst")" = "${mode#0}" ]; then
        return 1
    fi
    install -m "$mode" "$src" "$dst.new.$$"
    mv -f "$dst.new.$$" "$dst"
    changed "installed $dst"
}

ensure_link() { # path target: a new link renamed over the old one, never a missing moment
    local path=$1 target=$2
    if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
        return 0
    fi
    ln -sfn "$target" "$path.new.$$"
    mv -Tf "$path.new.$$" "$path"
    changed "linked $path -> $target"
}

passwd_field() { # user field: from the (staging) root's own user database
    awk -F: -v user="$1" -v field="$2" '$1 == user { print $field }' "$ROOT/etc/passwd"
}

ensure_user() {
    if [ "$(id -u)" != 0 ]; then
        say "not root: leaving the $USER_NAME user and file owners alone"
        OWNERS=0
        return
    fi
    if [ -n "$ROOT" ] && [ ! -f "$ROOT/etc/passwd" ]; then
        say "no $ROOT/etc/passwd: leaving the $USER_NAME user and file owners alone"
        OWNERS=0
        return
    fi
    local prefix=()
    [ -z "$ROOT" ] || prefix=(--prefix "$ROOT")
    if [ -z "$(passwd_field "$USER_NAME" 1)" ]; then
        useradd "${prefix[@]}" --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "instore services" "$USER_NAME"
        changed "created the system user $USER_NAME"
    fi
    # BlueZ lets the bluetooth group talk to it on D-Bus: the presence daemon's BLE scanning.
    local members
    members="$(awk -F: '$1 == "bluetooth" { print "," $4 "," }' "$ROOT/etc/group")"
    if [ -n "$members" ] && [[ "$members" != *",$USER_NAME,"* ]]; then
        usermod "${prefix[@]}" --append --groups bluetooth "$USER_NAME"
        changed "added $USER_NAME to the bluetooth group"
    fi
    INSTORE_UID="$(passwd_field "$USER_NAME" 3)"
    INSTORE_GID="$(passwd_field "$USER_NAME" 4)"
}

# --- the release -------------------------------------------------------------------------------
source_version() { # the version SRC says it is, without building anything
    local name
    name="$(basename "$SRC")"
    case "$SRC" in
        *.whl) echo "$name" | cut -d- -f2 ;;
        *.tar.gz) name="${name%.tar.gz}"; echo "${name#instore-}" ;;
        *)
            [ -f "$SRC/setup.cfg" ] || die "$SRC is not an instore checkout (no setup.cfg)"
            sed -n 's/^version *= *//p' "$SRC/setup.cfg" | head -n1
            ;;
    esac
}

install_release() { # REL VERSION
    local rel=$1 version=$2
    if [ -f "$rel/.complete" ]; then
        return 0
    fi
    [ ! -e "$rel" ] || say "removing the unfinished release left by an earlier attempt: $rel"
    rm -rf "$rel"
    mkdir -p "$rel"
    say "installing instore $version from $SRC into $rel"
    # Sharing another virtualenv's packages needs no pip of our own: that one's pip installs.
    local venv_args=() pip=("$rel/venv/bin/python" -m pip)
    if [ -n "$DEPS_FROM" ]; then
        venv_args=(--without-pip)
        pip=("$DEPS_FROM/bin/python" -m pip --python "$rel/venv/bin/python")
    fi
    "$PYTHON" -m venv "${venv_args[@]}" "$rel/venv" || {
        rm -rf "$rel"
        die "$PYTHON cannot create a virtualenv: install python3-venv (apt-get install python3-venv)"
    }
    pip+=(install --quiet --disable-pip-version-check --no-input)
    if [ -n "$WHEELHOUSE" ]; then
        pip+=(--no-index --find-links "$WHEELHOUSE")
    fi
    if [ -n "$DEPS_FROM" ]; then
        local shared ours
        shared="$("$DEPS_FROM/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        ours="$("$rel/venv/bin/python" -P -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        [ "$(basename "$(dirname "$shared")")" = "$(basename "$(dirname "$ours")")" ] || {
            rm -rf "$rel"
            die "--deps-from $DEPS_FROM uses another Python version than $PYTHON"
        }
        echo "$shared" >"$ours/instore-shared-deps.pth"
        pip+=(--no-deps)
    fi
    if ! "${pip[@]}" "$SRC"; then
        rm -rf "$rel"
        die "pip could not install $SRC (see above); nothing was changed"
    fi
    local report
    # -P: the release's own code, never a checkout in the working directory (with its egg-info).
    report="$("$rel/venv/bin/python" -P - "${REQUIRED_DEPLOY_FILES[@]}" <<'PY'
import importlib.metadata
import pathlib
import sys

import instore

deploy = pathlib.Path(instore.__file__).resolve().parents[1] / "deploy"
missing = [name for name in sys.argv[1:] if not (deploy / name).exists()]
print(importlib.metadata.version("instore"), deploy, " ".join(missing) or "-")
PY
)" || { rm -rf "$rel"; die "the installed release does not import (see above)"; }
    local got deploy missing
    read -r got deploy missing <<<"$report"
    if [ "$got" != "$version" ]; then
        rm -rf "$rel"
        die "$SRC installed instore $got, not $version; nothing was changed"
    fi
    if [ "$missing" != "-" ]; then
        rm -rf "$rel"
        die "$SRC has no $missing beside its code: build it from a checkout whose setup.cfg ships deploy/ as package data"
    fi
    ln -s "$(realpath --relative-to="$rel" "$deploy")" "$rel/deploy"
    printf 'instore %s\nfrom %s\n' "$version" "$SRC" >"$rel/.complete"
    changed "installed release $version"
}

# --- making a release current ------------------------------------------------------------------
activate() { # VERSION: its units and scripts on the box, then current -> it
    local version=$1 rel="$RELEASES/$1"
    [ -f "$rel/.complete" ] || die "release $version is not installed in $RELEASES"
    local deploy="$rel/deploy"
    ensure_dir "$UNIT_DIR" 0755
    local unit name
    for unit in "$deploy"/systemd/instore-*.service; do
        if install_file "$unit" "$UNIT_DIR/$(basename "$unit")" 0644; then UNITS_CHANGED=1; fi
    done
    for unit in "$UNIT_DIR"/instore-*.service; do
        [ -e "$unit" ] || continue
        name="$(basename "$unit")"
        if [ ! -e "$deploy/systemd/$name" ]; then
            if have_systemd; then systemctl disable --quiet "$name" || true; fi
            rm -f "$unit"
            UNITS_CHANGED=1
            changed "removed $name (release $version has no such unit)"
        fi
    done
    ensure_dir "$OPT/bin" 0755
    install_file "$deploy/install.sh" "$OPT/bin/install.sh" 0755 || true
    install_file "$deploy/instore_upgrade.py" "$OPT/bin/instore-upgrade" 0755 || true
    ensure_dir "$ROOT/usr/local/sbin" 0755
    ensure_dir "$ROOT/usr/local/bin" 0755
    ensure_link "$ROOT/usr/local/sbin/instore-upgrade" /opt/instore/bin/instore-upgrade
    ensure_link "$ROOT/usr/local/bin/instore" /opt/instore/current/venv/bin/instore
    ensure_link "$OPT/current" "releases/$version"
    if [ "$UNITS_CHANGED" = 1 ] && have_systemd; then
        systemctl daemon-reload
    fi
}

current_version() {
    if [ -L "$OPT/current" ]; then basename "$(readlink "$OPT/current")"; fi
}

# --- main --------------------------------------------------------------------------------------
ensure_dir "$OPT" 0755
exec 9>>"$OPT/.install.lock"
flock -n 9 || die "another install.sh is running"

if [ -n "$ACTIVATE" ]; then
    activate "$ACTIVATE"
    [ "$CHANGED" = 1 ] || say "release $ACTIVATE is already current; nothing to change"
    exit 0
fi

if [ -z "$SRC" ]; then
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    [ -f "$here/../setup.cfg" ] || die "give --from WHEEL|SDIST|DIR: $here is not in a checkout"
    SRC="$(cd "$here/.." && pwd)"
fi
[ -e "$SRC" ] || die "--from $SRC does not exist"
SRC="$(realpath "$SRC")"
[ -z "$WHEELHOUSE" ] || [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE is not a directory"
[ -z "$DEPS_FROM" ] || [ -x "$DEPS_FROM/bin/python" ] || die "--deps-from $DEPS_FROM is not a virtualenv"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON is not Python 3.11 or newer (give --python PY)"

found="$(source_version)"
[ -n "$found" ] || die "cannot tell the version of $SRC; give --version V"
if [ -n "$VERSION" ] && [ "$VERSION" != "$found" ]; then
    die "$SRC is instore $found, not $VERSION"
fi
VERSION="$found"
[[ "$VERSION" =~ ^[0-9A-Za-z][0-9A-Za-z.+!_-]*$ ]] || die "unusable version $VERSION"

ensure_user
ensure_dir "$RELEASES" 0755
ensure_dir "$ROOT/etc/instore" 0755
ensure_dir "$ROOT$STATE_DIR" 0750 "$INSTORE_UID" "$INSTORE_GID"
install_release "$RELEASES/$VERSION" "$VERSION"

if [ ! -e "$CONFIG" ]; then
    "$RELEASES/$VERSION/venv/bin/instore" deploy config-template >"$CONFIG.new.$$"
    chmod 0640 "$CONFIG.new.$$"
    if [ "$OWNERS" = 1 ]; then chown "0:$INSTORE_GID" "$CONFIG.new.$$"; fi
    mv -f "$CONFIG.new.$$" "$CONFIG"
    changed "wrote $CONFIG (edit it before starting the services)"
fi

current="$(current_version)"
if [ "$SWITCH" = yes ] || { [ "$SWITCH" = auto ] && [ -z "$current" ]; }; then
    activate "$VERSION"
elif [ "$current" = "$VERSION" ]; then
    activate "$VERSION"   # repairs a unit or script changed by hand; normally changes nothing
elif [ "$SWITCH" = auto ]; then
    say "release $VERSION is installed beside the current release $current;"
    say "switch with a database migration and health check: instore-upgrade $VERSION"
fi

if [ "$CHANGED" = 0 ]; then
    say "instore $VERSION is installed; nothing to change"
elif [ -z "$current" ]; then
    say "next: edit $CONFIG, then: systemctl enable --now instore-portal instore-gatekeeper instore-presence instore-offers"
fi
