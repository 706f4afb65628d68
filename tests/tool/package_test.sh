#!/usr/bin/env bash
# The Debian package: built by CPack from this build, unpacked into a scratch root, and checked
# for its layout, its control data and maintainer scripts, and a configuration the packaged
# hawser-server accepts.
#   package_test.sh path/to/build-dir
set -uo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if ! (cd "$work" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1); then
    echo "FAIL: cpack"; cat "$work/cpack.log"; exit 1
fi
deb=$(ls "$work"/out/hawser_*.deb 2>/dev/null | head -1)
[[ -n $deb ]] || { echo "FAIL: no .deb"; cat "$work/cpack.log"; exit 1; }
root="$work/root"
dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x"
dpkg-deb -e "$deb" "$work/control" || fail "dpkg-deb -e"

for f in usr/bin/hawser-server usr/bin/hawser-cli usr/bin/hawser-zdb usr/bin/hawser-bench; do
    [[ -x $root/$f ]] || fail "missing executable /$f"
done
for f in usr/include/hawser/hawser.hpp usr/include/hawser/admin.hpp usr/lib/libhawser.a \
         usr/lib/cmake/Hawser/HawserConfig.cmake usr/lib/cmake/Hawser/HawserTargets.cmake \
         usr/lib/systemd/system/hawser.service usr/share/hawser/server.toml \
         usr/share/doc/hawser/operations.md; do
    [[ -f $root/$f ]] || fail "missing /$f"
done
unit="$root/usr/lib/systemd/system/hawser.service"
for line in "Type=notify" "User=hawser" "StateDirectory=hawser" \
            "ExecStart=/usr/bin/hawser-server --config /etc/hawser/server.toml" \
            'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qxF "$line" "$unit" || fail "the unit lacks '$line'"
done
grep -q '^data_dir = "/var/lib/hawser"' "$root/usr/share/hawser/server.toml" ||
    fail "the packaged configuration does not keep its data in /var/lib/hawser"

control="$work/control/control"
grep -q '^Package: hawser$' "$control" || fail "package name"
grep -q '^Depends: .*libsodium' "$control" || fail "Depends lacks libsodium: $(grep Depends "$control")"
grep -q '^Depends: .*libmicrohttpd' "$control" || fail "Depends lacks libmicrohttpd"
for script in postinst prerm postrm; do
    [[ -x $work/control/$script ]] || fail "no executable $script"
    sh -n "$work/control/$script" || fail "$script does not parse"
done
grep -q "adduser --system" "$work/control/postinst" || fail "postinst creates no service user"

# The packaged binary accepts the packaged configuration (it checks it before anything else).
if ! "$root/usr/bin/hawser-server" -c "$root/usr/share/hawser/server.toml" \
        --data-dir "$work/data" --print-public-key >"$work/key" 2>"$work/server.err"; then
    fail "the packaged configuration is refused: $(cat "$work/server.err")"
fi
[[ $(cat "$work/key") =~ ^[0-9a-f]{64}$ ]] || fail "no public key printed"

if ((failures)); then echo "$failures failure(s)"; exit 1; fi
echo "package layout: ok ($(basename "$deb"))"
