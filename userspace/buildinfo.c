// SPDX-License-Identifier: MIT
/*
 * buildinfo.c - `spliced -V` (see buildinfo.h): what a bug report needs, one fact per line.
 */
#include <curl/curl.h>
#include <string.h>
#include <sys/utsname.h>

#include "buildinfo.h"
#include "splice.h"
#include "tls.h"
#include "version.h"

/* the Makefile passes the flags main objects were compiled with */
#ifndef SPLICED_CFLAGS
#define SPLICED_CFLAGS "unknown"
#endif

void buildinfo_print(FILE *f)
{
	char sockhash[64], btf[64], why[128];
	struct utsname u;
	int tx, rx;

	fprintf(f, "spliced %s\n", SPLICED_VERSION);
	fprintf(f, "build: cc %s, flags %s; %s, %s, libcurl %s\n", __VERSION__, SPLICED_CFLAGS,
		splice_library(), tls_library(), curl_version_info(CURLVERSION_NOW)->version);
	if (uname(&u) == 0)
		fprintf(f, "kernel: %s %s %s\n", u.sysname, u.release, u.machine);
	splice_probe_features(sockhash, sizeof(sockhash), btf, sizeof(btf));
	fprintf(f, "sockhash: %s\n", sockhash);
	tls_ktls_probe_dirs(&tx, &rx, why, sizeof(why));
	fprintf(f, "ktls tx: %s%s%s%s\n", tx ? "yes" : "no", tx ? "" : " (", tx ? "" : why,
		tx ? "" : ")");
	fprintf(f, "ktls rx: %s%s%s%s\n", rx ? "yes" : "no", rx ? "" : " (", rx ? "" : why,
		rx ? "" : ")");
	fprintf(f, "btf: %s\n", btf);
}
