#!/bin/sh
# Base image `busybox`: there is no Dockerfile here on purpose.
#
# dockyard first tries `docker pull busybox:latest` (the Hub image the tutorial uses).
# Where no registry is reachable it runs `rootfs.sh OUT_TAR` and imports the result with
#   docker import --change 'CMD ["sh"]' OUT_TAR busybox:latest
# This script builds that rootfs from the host's statically linked busybox
# (Debian: apt-get install busybox-static): /bin/busybox, one symlink per applet,
# a Hub-like /etc/passwd and /etc/group, and the usual empty directories.
# Every entry is owned by root in the tar, so it works when run as an ordinary user.
set -eu

die() {
    echo "rootfs.sh: $*" >&2
    exit 1
}

# A dynamic busybox would not run inside an image that has no libc.
is_static_elf() {
    [ "$(od -An -c -N4 "$1" | tr -d ' ')" = '177ELF' ] || return 1
    if command -v readelf >/dev/null 2>&1; then
        ! LC_ALL=C readelf -lW "$1" 2>/dev/null | grep -q 'program interpreter'
    elif command -v ldd >/dev/null 2>&1; then
        LC_ALL=C ldd "$1" 2>&1 | grep -q -e 'not a dynamic executable' -e 'statically linked'
    elif command -v file >/dev/null 2>&1; then
        LC_ALL=C file -L "$1" | grep -q 'statically linked'
    else
        die "cannot tell whether $1 is statically linked (no readelf, ldd or file)"
    fi
}

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: rootfs.sh OUT_TAR"
out_tar=$1
host_busybox=$(command -v busybox) \
    || die "busybox not found on PATH; install a static one (Debian: apt-get install busybox-static)"
is_static_elf "$host_busybox" \
    || die "$host_busybox is not a statically linked executable; install busybox-static"
out_dir=$(dirname -- "$out_tar")
[ -d "$out_dir" ] || die "directory $out_dir (for $out_tar) does not exist"

stage=$(mktemp -d)
tmp_tar=$(mktemp "$out_dir/.$(basename -- "$out_tar").XXXXXX")
trap 'rm -rf "$stage" "$tmp_tar"' EXIT
trap 'exit 1' HUP INT TERM

root=$stage/rootfs
mkdir -m 755 "$root"
for dir in bin sbin usr usr/bin usr/sbin etc home var var/www dev proc sys; do
    mkdir -m 755 "$root/$dir"
done
mkdir -m 700 "$root/root"
mkdir -m 1777 "$root/tmp"

cp "$host_busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"

# --list-full gives each applet's usual directory; older builds only have --list.
if applets=$("$host_busybox" --list-full 2>/dev/null) && [ -n "$applets" ]; then
    :
else
    applets=$("$host_busybox" --list | sed 's|^|bin/|')
fi
for applet in $applets; do
    case $applet in
        */busybox | */ | *[!A-Za-z0-9_./[-]*) continue ;;  # the binary itself, odd entries
        */*) ;;
        *) continue ;;  # top-level entries such as linuxrc
    esac
    [ -d "$root/${applet%/*}" ] || mkdir -p -m 755 "$root/${applet%/*}"
    ln -sf /bin/busybox "$root/$applet"
done

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
www-data:x:33:
nobody:x:65534:
GROUP
chmod 644 "$root/etc/passwd" "$root/etc/group"

tar --create --file="$tmp_tar" --directory="$root" \
    --owner=0 --group=0 --numeric-owner --sort=name .
chmod 644 "$tmp_tar"
mv -f "$tmp_tar" "$out_tar"
