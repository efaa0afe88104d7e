#!/bin/sh
# Build the Debian package of aws-s3-wodle with dpkg-deb.
#
#   packaging/build-deb.sh [--out DIR] [--python /usr/bin/python3] [--compress xz|gzip|zstd|none] [--level N]
#
# Layout of the package:
#   /opt/aws-s3-wodle/                    its own virtual environment: the wodle and its dependencies
#   /usr/bin/aws-s3-wodle                 the command (runs the venv's python -m aws_s3_wodle)
#   /usr/sbin/aws-s3-wodle-wazuh-switch   enable|disable|status: plug it into a Wazuh manager, reversibly
#   /lib/systemd/system/aws-s3-wodle.service   the standalone scheduler (not enabled by the install)
#   /etc/default/aws-s3-wodle, /etc/aws-s3-wodle/ossec.conf, /etc/aws-s3-wodle/rules/   (conffiles)
#   /usr/share/aws-s3-wodle/rules/ (and rules/tests/*.ini), /usr/share/doc/aws-s3-wodle/{README.md,examples/}
#
# The venv is built in a staging directory with the system's Python (the one the package depends on) and then
# moved to /opt in the package: its interpreter is a symlink to the system's python3, and every staging path
# written into its files (script shebangs, pyvenv.cfg, byte code) is rewritten to /opt/aws-s3-wodle, checked
# before packing. Dependencies come from the package registry or the local pip cache, as `pip install` gets them.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
OUT=$SRC/dist
PYTHON=/usr/bin/python3
COMPRESS=xz
LEVEL=6
while [ $# -gt 0 ]; do
    case $1 in
        --out) shift; OUT=$1 ;;
        --python) shift; PYTHON=$1 ;;
        --compress) shift; COMPRESS=$1 ;;
        --level) shift; LEVEL=$1 ;;
        -h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

command -v dpkg-deb >/dev/null 2>&1 || { echo "build-deb.sh: dpkg-deb not found: build on Debian or Ubuntu" >&2; exit 1; }
[ -x "$PYTHON" ] || { echo "build-deb.sh: $PYTHON not found (--python)" >&2; exit 1; }
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || { echo "build-deb.sh: $PYTHON lacks venv/ensurepip (apt-get install python3-venv)" >&2; exit 1; }

NAME=aws-s3-wodle
PREFIX=/opt/$NAME
VERSION=$(sed -n 's/^version *= *//p' "$SRC/setup.cfg")
ARCH=$(dpkg --print-architecture)
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYNEXT=$("$PYTHON" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aws-s3-wodle-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
ROOT=$WORK/root
VENV=$ROOT$PREFIX

echo "build-deb.sh: $NAME $VERSION ($ARCH, python $PYVER) in $WORK"

# 1. the sources alone (nothing of the worktree's build droppings, venvs or caches)
mkdir -p "$WORK/src"
cp -R "$SRC/setup.cfg" "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/aws_s3_wodle" "$WORK/src/"
find "$WORK/src" -name __pycache__ -type d -prune -exec rm -rf {} +

# 2. the virtual environment, then every staging path in it rewritten to the final one
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile --no-warn-script-location \
    "$WORK/src"
# pip and setuptools are not needed at run time (the package is upgraded as a whole)
"$VENV/bin/python" -m pip uninstall --quiet --disable-pip-version-check -y setuptools pip >/dev/null 2>&1
rm -rf "$VENV/bin/activate"* "$VENV/bin/Activate.ps1" "$VENV/bin/pip"* "$VENV"/lib/python*/site-packages/_distutils_hack \
    "$VENV"/lib/python*/site-packages/distutils-precedence.pth
# where pip installed from (a temporary directory) is of no use in the package
for meta in "$VENV"/lib/python*/site-packages/aws_s3_wodle-*.dist-info; do
    rm -f "$meta/direct_url.json"
    sed -i '/direct_url.json/d' "$meta/RECORD"
done
grep -rlI --null "$VENV" "$VENV" | xargs -0 -r sed -i "s|$VENV|$PREFIX|g"
# byte code compiled now, with the final paths in it (dpkg then owns it, and removes it cleanly)
find "$VENV" -name __pycache__ -type d -prune -exec rm -rf {} +
"$VENV/bin/python" -m compileall -q -j 0 -s "$ROOT" -p / "$VENV/lib" >/dev/null
if grep -rl "$WORK" "$VENV" >/dev/null 2>&1; then
    echo "build-deb.sh: the staging path is still written in:" >&2
    grep -rl "$WORK" "$VENV" | head >&2
    exit 1
fi

# 3. the command, the switch, the service, the configuration, the rules, the docs
install -D -m 0755 "$HERE/aws-s3-wodle" "$ROOT/usr/bin/aws-s3-wodle"
install -D -m 0755 "$HERE/aws-s3-wodle-wazuh-switch" "$ROOT/usr/sbin/aws-s3-wodle-wazuh-switch"
install -D -m 0644 "$HERE/aws-s3-wodle.service" "$ROOT/lib/systemd/system/aws-s3-wodle.service"
install -D -m 0640 "$HERE/aws-s3-wodle.default" "$ROOT/etc/default/aws-s3-wodle"  # may hold AWS keys
install -D -m 0640 "$SRC/etc/ossec.conf" "$ROOT/etc/aws-s3-wodle/ossec.conf"
for rules in "$SRC"/etc/rules/*.xml; do
    install -D -m 0644 "$rules" "$ROOT/etc/aws-s3-wodle/rules/$(basename "$rules")"
    install -D -m 0644 "$rules" "$ROOT/usr/share/$NAME/rules/$(basename "$rules")"
done
for ini in "$SRC"/etc/rules/tests/*.ini; do  # the rule tests, for Wazuh's runner on a manager (README)
    install -D -m 0644 "$ini" "$ROOT/usr/share/$NAME/rules/tests/$(basename "$ini")"
done
install -D -m 0644 "$SRC/README.md" "$ROOT/usr/share/doc/$NAME/README.md"
install -D -m 0644 "$HERE/README.md" "$ROOT/usr/share/doc/$NAME/packaging.md"
for ex in "$SRC"/etc/examples/*.conf; do
    install -D -m 0644 "$ex" "$ROOT/usr/share/doc/$NAME/examples/$(basename "$ex")"
done
install -d -m 0750 "$ROOT/var/lib/$NAME"

# 4. control data
mkdir -p "$ROOT/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$script" "$ROOT/DEBIAN/$script"
done
printf '%s\n' /etc/default/aws-s3-wodle /etc/aws-s3-wodle/ossec.conf \
    $(cd "$ROOT" && find etc/aws-s3-wodle/rules -type f | sed 's|^|/|') > "$ROOT/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: $NAME
Version: $VERSION
Architecture: $ARCH
Maintainer: aws-s3-wodle maintainers <aws-s3-wodle@users.noreply.github.com>
Installed-Size: $SIZE
Depends: python3 (>= $PYVER), python3 (<< $PYNEXT)
Recommends: wazuh-manager
Section: admin
Priority: optional
Description: pull AWS security data (Amazon Security Lake) into Wazuh
 aws-s3-wodle subscribes to Amazon Security Lake: it assumes the subscriber
 role, long-polls the subscriber's SQS queue, streams each new OCSF Parquet
 object to JSON and sends every event to the Wazuh manager's analysis engine.
 It reads the <wodle name="aws-s3"> sections of ossec.conf, runs standalone
 (systemd service) or in place of the manager's own aws-s3 module
 (aws-s3-wodle-wazuh-switch), and ships Wazuh rules for Security Lake events.
 Its Python dependencies live in their own virtual environment under /opt.
CONTROL

mkdir -p "$OUT"
DEB=$OUT/${NAME}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"$COMPRESS" -z"$LEVEL" --build "$ROOT" "$DEB" >/dev/null
echo "build-deb.sh: built $DEB ($(du -h "$DEB" | cut -f1))"
