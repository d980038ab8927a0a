# SPDX-License-Identifier: MIT
# section.sh - sourced by the benchmark scripts that own one section of docs/benchmarks.md
# (tls.sh, slow.sh, rules.sh); run.sh keeps every such section when it rewrites the file.
#
# write_section TAG SECTION_FILE OUT: replace the lines from "<!-- TAG: ..." to
# "<!-- end of TAG -->" in OUT with SECTION_FILE (which holds both markers), or append it.
write_section() {
	local tag=$1 section=$2 out=$3 tmp
	if [ -f "$out" ] && grep -q "^<!-- $tag:" "$out"; then
		tmp=$(mktemp)
		awk -v f="$section" -v tag="$tag" '
			index($0, "<!-- " tag ":") == 1 { while ((getline l < f) > 0) print l; skip = 1; next }
			$0 == "<!-- end of " tag " -->" { skip = 0; next }
			!skip { print }' "$out" >"$tmp" && cat "$tmp" >"$out"
		rm -f "$tmp"
	else
		{
			echo
			cat "$section"
		} >>"$out"
	fi
}
