#!/usr/bin/env bats
# package.bats - the Debian package (debian/): dpkg-buildpackage builds it from a clean copy of
# the tree (the files git tracks or would track, never .output), lintian finds no error and no
# warning in it, dpkg-deb -x shows every installed path, the installed binary accepts the
# installed configuration, the maintainer scripts create the system user, and `make install`
# lays out the same files. tests/run.sh runs this file once (tier deb, `make deb-test`), not on
# both data paths: it starts no daemon.
#
# The package is not installed on this machine: that would add a system user and files to the
# host that runs the tests, and a throwaway root (debootstrap, then a chroot) downloads and
# unpacks a base system on every run, minutes that CI does not have. The postinst runs against
# stand-ins for adduser and deb-systemd-helper instead.

load helpers

PKG=spliced

setup_file() {
	local d=$BATS_FILE_TMPDIR/deb t0
	export DEB_DIR=$d DEB_SRC=$d/src DEB_LOG=$d/build.log DEB_ROOT=$d/root
	if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null ||
		! command -v lintian >/dev/null; then
		echo "dpkg-buildpackage, debhelper or lintian missing (tools/install-deps.sh)" >"$d.skip"
		return 0
	fi
	mkdir -p "$DEB_SRC"
	# the working tree as git sees it (uncommitted edits included), without build outputs
	git -C "$E2E_ROOT" ls-files -z --cached --others --exclude-standard |
		(cd "$E2E_ROOT" && tar --null --no-recursion --ignore-failed-read -T - -cf - 2>/dev/null) |
		tar -xf - -C "$DEB_SRC"
	t0=$(date +%s)
	# nocheck: the unit tier already ran from the tree; parallel=2: CI's two CPUs
	(cd "$DEB_SRC" && [ ! -e .output ] &&
		DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc) >"$DEB_LOG" 2>&1
	echo $? >"$d/build.rc"
	echo "$(($(date +%s) - t0))" >"$d/build.s"
	mkdir -p "$DEB_ROOT"
	dpkg-deb -x "$d/${PKG}_$(deb_version)_amd64.deb" "$DEB_ROOT" 2>/dev/null || true
}

setup() {
	if [[ -f $BATS_FILE_TMPDIR/deb.skip ]]; then
		skip "$(cat "$BATS_FILE_TMPDIR/deb.skip")"
	fi
	e2e_bins
	: >"$BATS_TEST_TMPDIR/.pids"
	DEB="$DEB_DIR/${PKG}_$(deb_version)_amd64.deb"
	if [[ $(cat "$DEB_DIR/build.rc") != 0 ]]; then
		tail -n 40 "$DEB_LOG"
		fail "dpkg-buildpackage failed (log above)"
	fi
}

# deb_version: the release of userspace/version.h, which debian/changelog must carry
deb_version() {
	sed -n 's/^#define SPLICED_VERSION "\(.*\)"$/\1/p' "$E2E_ROOT/userspace/version.h"
}

# deb_files: "MODE PATH" of every regular file in the package, sorted by path
deb_files() {
	(cd "$DEB_ROOT" && find . -type f -printf '%m %P\n' | LC_ALL=C sort -k2)
}

@test "package: dpkg-buildpackage builds the .deb and its -dbgsym from a clean copy, the BPF object from source" {
	echo "# the package build took $(cat "$DEB_DIR/build.s") s" >&3
	[ -f "$DEB" ]
	[ -f "$DEB_DIR/${PKG}-dbgsym_$(deb_version)_amd64.deb" ]
	# the changelog's version is the daemon's
	assert_equal "$(deb_version)" "$(cd "$DEB_SRC" && dpkg-parsechangelog -S Version)" \
		"debian/changelog version"
	# the BPF object and its skeleton were built here, not taken from a tree
	grep -qE '^clang .*-target bpf .*-c bpf/splice\.bpf\.c' "$DEB_LOG"
	grep -q '^bpftool gen skeleton ' "$DEB_LOG"
	# with the distribution's hardening flags
	grep -qE '^cc .*-D_FORTIFY_SOURCE=2 .*-fstack-protector-strong' "$DEB_LOG"
	grep -qE '^cc .*-Wl,-z,relro -Wl,-z,now .* -o \.output/spliced ' "$DEB_LOG"
	dpkg-deb -f "$DEB" Architecture | grep -qx amd64
	dpkg-deb -f "$DEB" Depends | grep -q 'adduser'
}

@test "package: lintian finds no error and no warning in the .deb, the -dbgsym and the source" {
	local changes="$DEB_DIR/${PKG}_$(deb_version)_amd64.changes"
	[ -f "$DEB_DIR/${PKG}_$(deb_version).dsc" ]
	run lintian --fail-on error,warning --tag-display-limit 0 "$changes"
	echo "$output"
	[ "$status" -eq 0 ]
	if grep -qE '^[EW]: ' <<<"$output"; then fail "lintian errors or warnings"; fi
	# an override only with its reason: a comment right above every override line
	local f
	for f in "$E2E_ROOT"/debian/*lintian-overrides "$E2E_ROOT"/debian/source/lintian-overrides; do
		[[ -f $f ]] || continue
		awk '!/^#/ && NF && prev !~ /^#/ { print FILENAME ":" NR ": override without a reason"; bad = 1 }
			{ prev = $0 } END { exit bad }' "$f"
	done
}

@test "package: every installed path, its mode, the conffiles" {
	local expected="644 etc/logrotate.d/spliced
644 etc/spliced/spliced.conf
644 lib/systemd/system/spliced.service
755 usr/sbin/splicectl
755 usr/sbin/spliced
644 usr/share/bash-completion/completions/splicectl
644 usr/share/doc/spliced/changelog.gz
644 usr/share/doc/spliced/copyright
644 usr/share/doc/spliced/examples/demo.conf
644 usr/share/man/man5/spliced.conf.5.gz
644 usr/share/man/man8/splicectl.8.gz
644 usr/share/man/man8/spliced.8.gz"
	diff <(deb_files) <(echo "$expected")
	# owned by root, nothing else in the archive (no directory of the build host)
	dpkg-deb -c "$DEB" | awk '$2 != "root/root" { print; bad = 1 } END { exit bad }'
	dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles >"$BATS_TEST_TMPDIR/conffiles"
	diff "$BATS_TEST_TMPDIR/conffiles" - <<<"/etc/logrotate.d/spliced
/etc/spliced/spliced.conf"
}

@test "package: the installed spliced accepts the installed configuration, which drops to user spliced" {
	local conf="$DEB_ROOT/etc/spliced/spliced.conf"
	run "$DEB_ROOT/usr/sbin/spliced" -n -f "$conf"
	echo "$output"
	[ "$status" -eq 0 ]
	assert_equal "configuration OK" "$output"
	grep -qE '^\s*user spliced;' "$conf"
	# the unit runs the installed binary on it; the access log is where logrotate looks
	grep -qx 'ExecStart=/usr/sbin/spliced -f /etc/spliced/spliced.conf -P /run/spliced/spliced.pid' \
		"$DEB_ROOT/lib/systemd/system/spliced.service"
	grep -qE '^\s*access_log /var/log/spliced/access\.log;' "$conf"
	grep -q '^/var/log/spliced/\*\.log {' "$DEB_ROOT/etc/logrotate.d/spliced"
	grep -q 'kill -USR1 "$(cat /run/spliced/spliced.pid)"' "$DEB_ROOT/etc/logrotate.d/spliced"
	# both programs report the release
	run "$DEB_ROOT/usr/sbin/spliced" -V
	[[ ${lines[0]} == "spliced $(deb_version)" ]]
	run "$DEB_ROOT/usr/sbin/splicectl" -V
	[[ $output == *"$(deb_version)"* ]]
	# the man pages render from their installed place
	for p in man8/spliced.8 man8/splicectl.8 man5/spliced.conf.5; do
		MANWIDTH=80 man -l "$DEB_ROOT/usr/share/man/$p.gz" 2>/dev/null | grep -q 'EXIT STATUS\|SEE ALSO'
	done
}

@test "package: bash completion completes splicectl's commands and objects" {
	[[ -f /usr/share/bash-completion/bash_completion ]] || skip "bash-completion not installed"
	local comp="$DEB_ROOT/usr/share/bash-completion/completions/splicectl"
	complete_words() { # the words typed, the last one being completed
		bash -c 'source /usr/share/bash-completion/bash_completion; source "$1"; shift
			COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
			_splicectl; echo "${COMPREPLY[*]}"' _ "$comp" "$@"
	}
	assert_equal "show server acl reload log" "$(complete_words splicectl '')"
	assert_equal "info pools servers routes connections stats acl config" \
		"$(complete_words splicectl -j show '')"
	assert_equal "reopen" "$(complete_words splicectl log r)"
	assert_equal "--socket" "$(complete_words splicectl --so)"
}

@test "package: the postinst creates the system user spliced and enables nothing" {
	local ctl="$BATS_TEST_TMPDIR/ctl" stubs="$BATS_TEST_TMPDIR/stubs" calls="$BATS_TEST_TMPDIR/calls"
	mkdir -p "$ctl" "$stubs"
	dpkg-deb -e "$DEB" "$ctl"
	for s in adduser deb-systemd-helper deb-systemd-invoke systemctl; do
		printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$s" "$calls" >"$stubs/$s"
		chmod 0755 "$stubs/$s"
	done
	# deb-systemd-helper answers "not installed before, not enabled"
	printf '#!/bin/sh\necho "deb-systemd-helper $*" >>"%s"\nexit 1\n' "$calls" \
		>"$stubs/deb-systemd-helper"
	PATH="$stubs:$PATH" sh -e "$ctl/postinst" configure
	cat "$calls"
	grep -qx 'adduser --system --group --quiet --home /nonexistent --no-create-home spliced' "$calls"
	# installed disabled and not started: no enable, no start
	if grep -E ' (enable|start)( |$)' "$calls"; then fail "the postinst enables or starts"; fi
	# an upgrade does not stop the running daemon (a live upgrade takes over)
	: >"$calls"
	PATH="$stubs:$PATH" sh -e "$ctl/prerm" upgrade
	if grep -q stop "$calls"; then fail "prerm upgrade stops the daemon"; fi
}

@test "package: make install lays out the same files as the package" {
	local dest="$BATS_TEST_TMPDIR/dest" out="$BATS_TEST_TMPDIR/out" f
	local ctl=${SPLICECTL_BIN:-$E2E_ROOT/.output/splicectl}
	mkdir -p "$out"
	cp "$SPLICED_BIN" "$out/spliced"
	cp "$ctl" "$out/splicectl"
	# debian/rules' settings, from copies of the binaries: the tree is not rebuilt
	run make -C "$E2E_ROOT" --no-print-directory install OUTPUT="$out" -o "$out/spliced" \
		-o "$out/splicectl" DESTDIR="$dest" PREFIX=/usr UNITDIR=/lib/systemd/system
	echo "$output"
	[ "$status" -eq 0 ]
	# the package adds only what Debian policy asks of every package: its copyright and its
	# changelog
	diff <(cd "$dest" && find . -type f -printf '%m %P\n' | LC_ALL=C sort -k2) \
		<(deb_files | grep -vE ' usr/share/doc/spliced/(copyright|changelog\.gz)$')
	# and the files are the same, but for the binaries (built with other flags)
	while read -r _ f; do
		[[ $f == usr/sbin/* ]] && continue
		cmp "$dest/$f" "$DEB_ROOT/$f"
	done < <(cd "$dest" && find . -type f -printf '%m %P\n')
}
