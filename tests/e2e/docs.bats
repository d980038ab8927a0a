#!/usr/bin/env bats
# docs.bats - what an operator installs and reads: the man pages render without a groff warning,
# spliced.conf(5) names every keyword the parser accepts, the messages that list keywords list
# those of the configuration tables, the markdown tables of docs/ are whole, spliced(8) every
# option of `spliced -h`, the configuration examples pass `spliced -n`, `make install` lays out
# the expected files, and the systemd unit passes `systemd-analyze verify`. Needs no root.
# (tests/run.sh runs this file under both SPLICED_ARGS settings; it does not start a daemon.)

load helpers

PAGES=(docs/spliced.8 docs/splicectl.8 docs/spliced.conf.5)

# render PAGE: plain text, wide lines, no hyphenation or justification, so words stay whole
render() {
	MANWIDTH=400 man --nh --nj -l "$E2E_ROOT/$1" 2>/dev/null | col -bx
}

# section TEXT NAME: the body of one top-level section of a rendered page
section() {
	awk -v want="$2" '/^[A-Z][A-Z ]*$/ { on = ($0 == want); next } on' <<<"$1"
}

# has_word TEXT WORD: WORD occurs in TEXT, not as part of a longer name or option
has_word() {
	grep -qE "(^|[^-_[:alnum:]])$(sed 's/[.]/[.]/g' <<<"$2")([^-_[:alnum:]]|$)" <<<"$1"
}

# dump_keywords: `spliced --dump-keywords`, the keyword tables of userspace/conf_keywords.c as
# "BLOCK WORD" lines ("global workers", "pool.server weight")
dump_keywords() {
	"$SPLICED_BIN" --dump-keywords
}

# conf_keywords: every keyword the parser accepts, one per line, sorted, unique: the words of
# the keyword tables, and the words the listener and route blocks (parsed in conf.c without a
# table) and the table setters compare an argument with (strcmp/strcasecmp against a literal)
conf_keywords() {
	{
		dump_keywords | cut -d' ' -f2
		grep -ohE 'str(case)?cmp\([^,()]+(\[[^]]*\])?, "[^"]+"\)' \
			"$E2E_ROOT"/userspace/conf.c "$E2E_ROOT"/userspace/conf_keywords.c |
			sed -E 's/.*"([^"]+)"\)$/\1/'
	} | grep -E "^[A-Za-z]" | sort -u
}

# install_to ARGS...: `make install` with ARGS from copies of the binaries, so the test never
# rebuilds the tree it runs from; skips while the tree has no splicectl binary yet
# (SPLICECTL_BIN overrides .output/splicectl)
install_to() {
	local out="$BATS_TEST_TMPDIR/out" ctl=${SPLICECTL_BIN:-$E2E_ROOT/.output/splicectl}
	[[ -x $ctl ]] || skip "no $ctl (build rule missing or not built: make all)"
	mkdir -p "$out"
	cp "$SPLICED_BIN" "$out/spliced"
	cp "$ctl" "$out/splicectl"
	run make -C "$E2E_ROOT" --no-print-directory install OUTPUT="$out" \
		-o "$out/spliced" -o "$out/splicectl" "$@"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "docs: every man page renders with groff and man -l, without a warning" {
	local p err text
	for p in "${PAGES[@]}"; do
		err=$(groff -man -ww -z "$E2E_ROOT/$p" 2>&1)
		if [[ -n $err ]]; then
			echo "$p: groff warnings:" "$err"
			return 1
		fi
		err=$(MANWIDTH=80 man --warnings=all -l "$E2E_ROOT/$p" 2>&1 >/dev/null)
		if [[ -n $err ]]; then
			echo "$p: man -l:" "$err"
			return 1
		fi
		text=$(render "$p")
		for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
			grep -qx "$s" <<<"$text" || { echo "$p: no $s section"; return 1; }
		done
	done
}

@test "docs: spliced.conf.5 names every keyword the configuration parser accepts" {
	local text kw missing=() n=0
	text=$(render docs/spliced.conf.5)
	# the extraction itself must still work: known keywords of every block
	for kw in pin_path workers header bind route server weight health interval eject tls \
		certificate round_robin TLSv1.3 consecutive_failures verify off source; do
		conf_keywords | grep -qxF -- "$kw" ||
			{ echo "keyword extraction lost '$kw'"; return 1; }
	done
	while read -r kw; do
		n=$((n + 1))
		has_word "$text" "$kw" || missing+=("$kw")
	done < <(conf_keywords)
	echo "$n keywords checked"
	[ "$n" -ge 60 ]
	if ((${#missing[@]})); then
		echo "missing from docs/spliced.conf.5: ${missing[*]}"
		return 1
	fi
}

# a configuration with one mistake (BOGUS) in each block of the keyword tables, keyed by the
# block's name in `spliced --dump-keywords`; the rest of the file is valid
declare -gA BOGUS_IN=(
	[config]='BOGUS { }'
	[global]='global { BOGUS 1; }'
	[global.timeout]='global { timeout BOGUS 1s; }'
	[global.access_log]='global { access_log stderr BOGUS x; }'
	[global.access_log.format]='global { access_log stderr format BOGUS; }'
	[pool]='pool q { server a 127.0.0.1:1; BOGUS 1; }'
	[pool.server]='pool q { server a 127.0.0.1:1 BOGUS; }'
	[pool.balance]='pool q { server a 127.0.0.1:1; balance BOGUS; }'
	[pool.tls]='pool q { server a 127.0.0.1:1; tls BOGUS x; }'
	[pool.tls.verify]='pool q { server a 127.0.0.1:1; tls verify BOGUS; }'
	[pool.health]='pool q { server a 127.0.0.1:1; health BOGUS; }'
	[pool.health.http]='pool q { server a 127.0.0.1:1; health http / BOGUS 1; }'
	[pool.health.tcp]='pool q { server a 127.0.0.1:1; health tcp BOGUS 1; }'
	[pool.eject]='pool q { server a 127.0.0.1:1; eject BOGUS; }'
	[pool.eject.consecutive_failures]='pool q { server a 127.0.0.1:1; eject consecutive_failures 3 BOGUS 1s; }'
	[pool.eject.slow]='pool q { server a 127.0.0.1:1; eject slow 3 BOGUS 1s; }'
	[pool.queue]='pool q { server a 127.0.0.1:1; queue 3 BOGUS 1s; }'
	[pool.retry_on]='pool q { server a 127.0.0.1:1; retry_on 502 BOGUS; }'
	[pool.sticky]='pool q { server a 127.0.0.1:1; sticky BOGUS x; }'
	[pool.sticky.cookie]='pool q { server a 127.0.0.1:1; sticky cookie S BOGUS 1s; }'
	[pool.timeout]='pool q { server a 127.0.0.1:1; timeout BOGUS 1s; }'
	[listener.tls.protocols]='listener t { bind 127.0.0.1:2; tls protocols BOGUS; route { pool base; } }'
	[listener]='listener t { bind 127.0.0.1:2; BOGUS 1; route { pool base; } }'
	[listener.route]='listener t { bind 127.0.0.1:2; route { pool base; BOGUS 1; } }'
	[listener.route.not]='listener t { bind 127.0.0.1:2; route { pool base; not BOGUS 1; } }'
	[listener.splice]='listener t { bind 127.0.0.1:2; splice BOGUS; route { pool base; } }'
	[listener.underscore_headers]='listener t { bind 127.0.0.1:2; underscore_headers BOGUS; route { pool base; } }'
)

@test "docs: every message that lists keywords lists those of the configuration tables" {
	local blocks block conf="$BATS_TEST_TMPDIR/bogus.conf" line listed want n=0
	blocks=$(dump_keywords | cut -d' ' -f1 | sort -u)
	[ "$(wc -l <<<"$blocks")" -ge 12 ]
	for block in $blocks; do
		[[ -n ${BOGUS_IN[$block]:-} ]] ||
			{ echo "no configuration with a mistake in '$block' here: add one"; return 1; }
		printf '%s\n%s\n%s\n' "${BOGUS_IN[$block]}" \
			'listener base { bind 127.0.0.1:1; route { pool base; } }' \
			'pool base { server b 127.0.0.1:80; }' >"$conf"
		run "$SPLICED_BIN" -n -f "$conf"
		[ "$status" -eq 1 ]
		line=$(grep -F "'BOGUS'" <<<"$output" | head -1)
		[[ $line =~ \((expected )?([^()]*)\)$ ]] ||
			{ echo "$block: no list in the message: ${line:-$output}"; return 1; }
		# "weight N, backup" -> weight backup
		listed=$(sed 's/, /\n/g' <<<"${BASH_REMATCH[2]}" | cut -d' ' -f1 | sort)
		want=$(dump_keywords | awk -v b="$block" '$1 == b { print $2 }' | sort)
		if [[ $listed != "$want" ]]; then
			echo "$block: the message lists"
			echo "$listed"
			echo "the table has"
			echo "$want"
			return 1
		fi
		n=$((n + 1))
	done
	echo "$n lists checked"
}

# check_tables FILE: every markdown table is whole: its rows follow each other (a blank line
# ends the table, so rows after one lose their header) and have as many cells as the header
check_tables() {
	awk -v f="$1" '
		function headless() {
			printf "%s:%d: a table row without a header (does a blank line break the table above?)\n", f, start
			bad = 1
		}
		/^```/ { code = !code; next }
		code { next }
		/^\|/ {
			row = $0
			gsub(/\\\|/, "", row) # an escaped pipe is text, not a cell border
			cells = gsub(/\|/, "|", row) - 1
			if (!intable) { # a table starts with a header row, then a |---| line
				intable = 1
				want = cells
				start = NR
				sep = 1
				next
			}
			if (sep) {
				sep = 0
				if ($0 !~ /^\|( *:?-+:? *\|)+ *$/)
					headless()
			}
			if (cells != want) {
				printf "%s:%d: %d cells, the header has %d\n", f, NR, cells, want
				bad = 1
			}
			next
		}
		{
			if (intable && sep)
				headless()
			intable = 0
		}
		END {
			if (intable && sep)
				headless()
			exit bad
		}
	' "$1"
}

@test "docs: every markdown table in docs/*.md is whole" {
	local f n=0 broken="$BATS_TEST_TMPDIR/broken.md"
	for f in "$E2E_ROOT"/docs/*.md "$E2E_ROOT"/README.md; do
		check_tables "$f"
		n=$((n + 1))
	done
	[ "$n" -ge 5 ]
	# the check finds the mistakes it is for
	printf '| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n' >"$broken"
	run check_tables "$broken"
	[ "$status" -ne 0 ]
	assert_contains "$output" "broken.md:5: a table row without a header"
	printf '| a | b |\n|---|---|\n| 1 \\| x | 2 |\n| 3 | 4 | 5 |\n' >"$broken"
	run check_tables "$broken"
	[ "$status" -ne 0 ]
	assert_contains "$output" "broken.md:4: 3 cells, the header has 2"
}

@test "docs: CONFIG.md's tables name every global and pool keyword" {
	local kw missing=()
	while read -r kw; do
		grep -qE "^\|.*\`$kw[ ;\`]" "$E2E_ROOT/docs/CONFIG.md" || missing+=("$kw")
	done < <(dump_keywords | awk '$1 == "global" || $1 == "pool" { print $2 }')
	if ((${#missing[@]})); then
		echo "missing from the tables of docs/CONFIG.md: ${missing[*]}"
		return 1
	fi
}

@test "docs: spliced.8 documents every option of spliced -h in OPTIONS" {
	local help opts text o missing=()
	run "$SPLICED_BIN" -h
	[ "$status" -eq 0 ]
	help=$output
	opts=$(grep -oE '(^|[[:space:],])--?[A-Za-z][-A-Za-z]*' <<<"$help" | tr -d ' ,' | sort -u)
	[ "$(wc -l <<<"$opts")" -ge 9 ]
	text=$(section "$(render docs/spliced.8)" OPTIONS)
	for o in $opts; do
		has_word "$text" "$o" || missing+=("$o")
	done
	if ((${#missing[@]})); then
		echo "missing from OPTIONS of docs/spliced.8: ${missing[*]}"
		return 1
	fi
}

@test "docs: splicectl.8 documents every option and command of the protocol" {
	local text o
	text=$(render docs/splicectl.8)
	for o in -s -j show info pools servers connections stats config server set weight drain log reopen \
		maintenance ready reload OK ERR json; do
		has_word "$text" "$o" || { echo "splicectl.8 lacks '$o'"; return 1; }
	done
	for o in PROTOCOL "EXIT STATUS" EXAMPLES; do
		grep -qx "$o" <<<"$text" || { echo "splicectl.8: no $o section"; return 1; }
	done
	if [[ -x $E2E_ROOT/.output/splicectl ]]; then
		run "$E2E_ROOT/.output/splicectl" -h
		for o in $(grep -oE '(^|[[:space:][])-[A-Za-z]\b' <<<"$output" | tr -d ' [' | sort -u); do
			has_word "$(section "$text" OPTIONS)" "$o" ||
				{ echo "splicectl -h option $o not in OPTIONS"; return 1; }
		done
	fi
}

@test "docs: the configuration examples of spliced.conf.5 pass spliced -n" {
	local d="$BATS_TEST_TMPDIR" i=0
	# each .EX block after .SH EXAMPLES that holds a listener is one example file
	awk -v d="$d" '
		/^\.SH EXAMPLES/ { ex = 1 }
		ex && /^\.EX/ { n++; f = d "/example" n ".conf"; inb = 1; next }
		ex && /^\.EE/ { inb = 0; next }
		ex && inb { gsub(/\\-/, "-"); gsub(/\\e/, "\\"); print > f }
	' "$E2E_ROOT/docs/spliced.conf.5"
	# the TLS example's files live in the test directory
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=example.com \
		-addext "subjectAltName=DNS:example.com,DNS:*.example.com" \
		-keyout "$d/example.com.key" -out "$d/example.com.pem" 2>/dev/null
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other.org \
		-addext "subjectAltName=DNS:other.org" \
		-keyout "$d/other.org.key" -out "$d/other.org.pem" 2>/dev/null
	cp "$d/example.com.pem" "$d/internal-ca.pem"
	for f in "$d"/example*.conf; do
		grep -q '^listener' "$f" || continue
		i=$((i + 1))
		sed -i -e "s|/etc/spliced/|$d/|g" -e "s|/run/spliced/|$d/|g" \
			-e "s|/var/log/spliced/|$d/|g" -e 's/user spliced;/user nobody;/' \
			-e 's/group spliced;/group nogroup;/' "$f"
		run timeout 20 "$SPLICED_BIN" -n -f "$f"
		echo "$(basename "$f"): $output"
		[ "$status" -eq 0 ]
	done
	[ "$i" -ge 2 ]
}

@test "docs: make install DESTDIR= installs binaries, gzipped man pages, unit, configuration, logrotate, completion" {
	local dest="$BATS_TEST_TMPDIR/dest" expected
	install_to DESTDIR="$dest"
	expected="644 etc/logrotate.d/spliced
644 etc/spliced/spliced.conf
644 usr/local/lib/systemd/system/spliced.service
755 usr/local/sbin/splicectl
755 usr/local/sbin/spliced
644 usr/local/share/bash-completion/completions/splicectl
644 usr/local/share/doc/spliced/examples/demo.conf
644 usr/local/share/man/man5/spliced.conf.5.gz
644 usr/local/share/man/man8/splicectl.8.gz
644 usr/local/share/man/man8/spliced.8.gz"
	diff <(cd "$dest" && find . -type f -printf '%m %P\n' | LC_ALL=C sort -k2) \
		<(echo "$expected")
	# the unit runs the installed binary on the installed configuration
	grep -qx 'ExecStart=/usr/local/sbin/spliced -f /etc/spliced/spliced.conf -P /run/spliced/spliced.pid' \
		"$dest/usr/local/lib/systemd/system/spliced.service"
	# man pages are gzip -9n (reproducible: no name, no time stamp) and still render
	for p in man8/spliced.8 man8/splicectl.8 man5/spliced.conf.5; do
		gzip -t "$dest/usr/local/share/man/$p.gz"
		MANWIDTH=80 man -l "$dest/usr/local/share/man/$p.gz" | grep -q 'SEE ALSO'
	done
	# the default configuration and the demo one are valid as installed
	run "$SPLICED_BIN" -n -f "$dest/etc/spliced/spliced.conf"
	[ "$status" -eq 0 ]
	run "$SPLICED_BIN" -n -f "$dest/usr/local/share/doc/spliced/examples/demo.conf"
	[ "$status" -eq 0 ]
	# a second install keeps the operator's configuration
	echo '# edited' >>"$dest/etc/spliced/spliced.conf"
	install_to DESTDIR="$dest"
	tail -n 1 "$dest/etc/spliced/spliced.conf" | grep -qx '# edited'
	# uninstall removes everything but the configuration
	run make -C "$E2E_ROOT" --no-print-directory uninstall DESTDIR="$dest"
	[ "$status" -eq 0 ]
	[ "$(cd "$dest" && find . -type f)" = "./etc/spliced/spliced.conf" ]
	[ ! -e "$dest/usr/local/share/doc/spliced" ]
}

@test "docs: the installed systemd unit passes systemd-analyze verify" {
	local root="$BATS_TEST_TMPDIR/root" unit
	command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"
	# a PREFIX (not DESTDIR) install, so the unit's ExecStart= paths exist for verify
	install_to PREFIX="$root/usr" SYSCONFDIR="$root/etc"
	unit="$root/usr/lib/systemd/system/spliced.service"
	grep -q "^ExecStart=$root/usr/sbin/spliced -f $root/etc/spliced/spliced.conf -P /run/spliced/spliced.pid\$" "$unit"
	# Documentation=man:... is checked against the installed pages
	run env MANPATH="$root/usr/share/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# the unit's ExecStartPre= check passes on the installed sample
	"$root/usr/sbin/spliced" -n -f "$root/etc/spliced/spliced.conf"
}
