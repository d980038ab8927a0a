// SPDX-License-Identifier: MIT
/*
 * test_tls.c - TLS listener configuration: certificates generated here with OpenSSL (valid,
 * expired, not yet valid, mismatched key), loaded through conf_load_string() and tls_prepare(),
 * errors with line numbers, SAN names and SNI selection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "test.h"
#include "tls.h"

static char dir[64];

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

/* write a self-signed certificate valid from now+from_days to now+to_days with SAN names */
static void write_cert(const char *name, EVP_PKEY *key, long from_days, long to_days,
		       const char *san)
{
	char path[128];
	X509 *x = X509_new();
	X509_NAME *subj;
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	FILE *f;

	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, key);
	subj = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1,
				   0);
	X509_set_issuer_name(x, subj);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (san) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, key, EVP_sha256());
	snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
}

static void write_key(const char *name, EVP_PKEY *key)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	f = fopen(path, "w");
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

/* load a config whose listener carries the given tls lines; errors go to *errs */
static struct config *load(const char *tls_lines, char *errs, size_t errlen)
{
	char text[4096];
	FILE *errf = fmemopen(errs, errlen, "w");
	struct config *cf;

	memset(errs, 0, errlen);
	snprintf(text, sizeof(text),
		 "listener web {\n"
		 "    bind 127.0.0.1:0;\n"
		 "%s"
		 "    route { pool p; }\n"
		 "}\n"
		 "pool p { server a 127.0.0.1:9; }\n",
		 tls_lines);
	/* loading parses; preparing builds the contexts (and reads the files) */
	cf = conf_load_string("t.conf", text, errf);
	if (cf && tls_prepare(cf, errf)) {
		conf_free(cf);
		cf = NULL;
	}
	fclose(errf);
	return cf;
}

static void test_valid_certificates_and_sni(void)
{
	char lines[1024], errs[2048];
	struct config *cf;
	struct listener *l;

	snprintf(lines, sizeof(lines),
		 "    tls certificate %s/a.crt key %s/a.key;\n"
		 "    tls certificate %s/w.crt key %s/w.key;\n"
		 "    tls protocols TLSv1.2 TLSv1.3;\n",
		 dir, dir, dir, dir);
	cf = load(lines, errs, sizeof(errs));
	if (!ASSERT_TRUE(cf != NULL, "errors: %s", errs))
		return;
	l = &cf->listeners[0];
	ASSERT_EQ(tls_cert_count(l), 2, "certificates");
	ASSERT_EQ(l->tls_min, TLS1_2_VERSION, "min protocol");
	ASSERT_EQ(l->tls_max, TLS1_3_VERSION, "max protocol");
	ASSERT_EQ(tls_select_cert(l, "a.test"), 0, "exact name of the first");
	ASSERT_EQ(tls_select_cert(l, "www.a.test"), 0, "SAN of the first");
	ASSERT_EQ(tls_select_cert(l, "x.w.test"), 1, "wildcard of the second");
	ASSERT_EQ(tls_select_cert(l, "exact.w.test"), 1, "exact SAN of the second");
	ASSERT_EQ(tls_select_cert(l, "y.x.w.test"), 0, "wildcard covers one label only");
	ASSERT_EQ(tls_select_cert(l, "other.test"), 0, "unknown name: the default");
	ASSERT_EQ(tls_select_cert(l, NULL), 0, "no SNI: the default");
	conf_free(cf);
}

static void test_errors_with_lines(void)
{
	char lines[2048], errs[4096];
	struct config *cf;

	snprintf(lines, sizeof(lines),
		 "    tls certificate %s/missing.crt key %s/a.key;\n" /* line 3 */
		 "    tls certificate %s/a.crt key %s/w.key;\n"	      /* line 4 */
		 "    tls certificate %s/old.crt key %s/old.key;\n"   /* line 5 */
		 "    tls certificate %s/new.crt key %s/new.key;\n",  /* line 6 */
		 dir, dir, dir, dir, dir, dir, dir, dir);
	cf = load(lines, errs, sizeof(errs));
	ASSERT_TRUE(cf == NULL, "broken certificates must fail the load");
	ASSERT_TRUE(strstr(errs, "t.conf:3: cannot read certificate") &&
			    strstr(errs, "No such file or directory"),
		    "%s", errs);
	ASSERT_TRUE(strstr(errs, "t.conf:4: key") && strstr(errs, "does not match certificate"),
		    "%s", errs);
	ASSERT_TRUE(strstr(errs, "t.conf:5: certificate") && strstr(errs, "has expired"), "%s",
		    errs);
	ASSERT_TRUE(strstr(errs, "t.conf:6: certificate") && strstr(errs, "is not valid yet"), "%s",
		    errs);
	conf_free(cf);
	/* mistakes in the text fail the load itself, before any file is read */
	snprintf(lines, sizeof(lines),
		 "    tls protocols TLSv1.1;\n"	    /* line 3 */
		 "    tls certificate %s/a.crt;\n", /* line 4 */
		 dir);
	cf = load(lines, errs, sizeof(errs));
	ASSERT_TRUE(cf == NULL, "broken tls lines must fail the load");
	ASSERT_TRUE(strstr(errs, "t.conf:3: unknown TLS protocol 'TLSv1.1'") != NULL, "%s", errs);
	ASSERT_TRUE(strstr(errs, "t.conf:4: usage: tls certificate FILE key FILE") != NULL, "%s",
		    errs);
	conf_free(cf);
}

static void test_bad_cipher_list(void)
{
	char lines[1024], errs[2048];
	struct config *cf;

	snprintf(lines, sizeof(lines),
		 "    tls certificate %s/a.crt key %s/a.key;\n"
		 "    tls ciphers NOT-A-CIPHER;\n",
		 dir, dir);
	cf = load(lines, errs, sizeof(errs));
	ASSERT_TRUE(cf == NULL, "an unusable cipher list fails the load");
	ASSERT_TRUE(strstr(errs, "t.conf:4: no usable cipher in 'NOT-A-CIPHER'") != NULL, "%s",
		    errs);
	conf_free(cf);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ticket keys rotate with the clock; one older key still opens tickets, then none does */
static void test_ticket_rotation(void)
{
	char lines[1024], errs[2048];
	unsigned char n0[16], n1[16], unknown[16] = {0};
	struct config *cf;
	struct tls_server *ts;
	uint64_t t;

	snprintf(lines, sizeof(lines),
		 "    tls certificate %s/a.crt key %s/a.key;\n"
		 "    tls ticket_rotate 10s;\n",
		 dir, dir);
	cf = load(lines, errs, sizeof(errs));
	if (!ASSERT_TRUE(cf != NULL, "errors: %s", errs))
		return;
	ts = cf->listeners[0].tls;
	ASSERT_EQ(cf->listeners[0].tls_ticket_rotate_ms, 10000, "ticket_rotate parsed");
	t = mono_ms();
	ASSERT_EQ(tls_tickets_current(ts, n0, t), 0, "a current key");
	ASSERT_EQ(tls_tickets_find(ts, n0, t), 0, "the current key opens its tickets");
	ASSERT_EQ(tls_tickets_find(ts, unknown, t), -1, "an unknown key name");
	ASSERT_EQ(tls_tickets_current(ts, n1, t + 10001), 0, "rotated");
	ASSERT_TRUE(memcmp(n0, n1, 16) != 0, "a new key after one period");
	ASSERT_EQ(tls_tickets_find(ts, n0, t + 10001), 1, "the previous key still opens (renew)");
	ASSERT_EQ(tls_tickets_find(ts, n1, t + 10001), 0, "the new key is current");
	ASSERT_EQ(tls_tickets_find(ts, n0, t + 20001), -1, "two periods: the first key is gone");
	ASSERT_EQ(tls_tickets_find(ts, n1, t + 20001), 1, "the second is the previous one");
	ASSERT_EQ(tls_tickets_find(ts, n1, t + 90001), -1, "a long pause drops every old key");
	ASSERT_EQ(tls_tickets_current(ts, n0, t + 90001), 0, "and makes a fresh one");
	ASSERT_EQ(tls_tickets_find(ts, n0, t + 90001), 0, "which is current");
	conf_free(cf);

	snprintf(lines, sizeof(lines),
		 "    tls certificate %s/a.crt key %s/a.key;\n"
		 "    tls ticket_rotate 10ms;\n",
		 dir, dir);
	cf = load(lines, errs, sizeof(errs));
	ASSERT_TRUE(cf == NULL, "a rotation below 1s is refused");
	ASSERT_TRUE(strstr(errs, "t.conf:4: usage: tls ticket_rotate DURATION;") != NULL, "%s",
		    errs);
	conf_free(cf);
}

static void test_name_match(void)
{
	ASSERT_TRUE(tls_name_match("a.test", "A.TEST"), "case-insensitive");
	ASSERT_TRUE(tls_name_match("*.w.test", "x.w.test"), "wildcard");
	ASSERT_TRUE(!tls_name_match("*.w.test", "w.test"), "wildcard needs a label");
	ASSERT_TRUE(!tls_name_match("*.w.test", "a.b.w.test"), "one label only");
	ASSERT_TRUE(!tls_name_match("*.w.test", ".w.test"), "empty label");
	ASSERT_TRUE(!tls_name_match("a.test", "b.test"), "different names");
}

int main(void)
{
	EVP_PKEY *ka, *kw, *kold, *knew;
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/spliced-test-tls-%d", (int)getpid());
	if (mkdir(dir, 0700)) {
		perror("mkdir");
		return 1;
	}
	ka = new_key();
	kw = new_key();
	kold = new_key();
	knew = new_key();
	write_cert("a", ka, 0, 30, "DNS:a.test,DNS:www.a.test");
	write_key("a", ka);
	write_cert("w", kw, 0, 30, "DNS:*.w.test,DNS:exact.w.test");
	write_key("w", kw);
	write_cert("old", kold, -30, -1, "DNS:old.test");
	write_key("old", kold);
	write_cert("new", knew, 10, 30, "DNS:new.test");
	write_key("new", knew);

	RUN_TEST(test_valid_certificates_and_sni);
	RUN_TEST(test_errors_with_lines);
	RUN_TEST(test_bad_cipher_list);
	RUN_TEST(test_name_match);
	RUN_TEST(test_ticket_rotation);
	rc = TEST_DONE();

	EVP_PKEY_free(ka);
	EVP_PKEY_free(kw);
	EVP_PKEY_free(kold);
	EVP_PKEY_free(knew);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", dir);
	}
	return rc;
}
