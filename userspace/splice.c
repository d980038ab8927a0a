// SPDX-License-Identifier: MIT
/*
 * splice.c - BPF skeleton lifecycle: load, pin (bpftool-readable, BTF-typed), publish stats.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "splice.h"
#include "splice_abi.h"
#include "splice.skel.h"

_Static_assert(sizeof(struct spliced_kern_counters) == 40, "ABI: kern counters");
_Static_assert(sizeof(struct spliced_server_stats) == 192, "ABI: server stats");

static struct splice_bpf *skel;
static char pin_dir[PATH_MAX];

static int ensure_bpffs(const char *dir)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		goto mkdirs;
	if (mkdir("/sys/fs/bpf", 0700) == -1 && errno != EEXIST)
		return -errno;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") == -1)
		return -errno;
mkdirs:
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static int pin_map(struct bpf_map *map)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, bpf_map__name(map));
	/* a stale pin from an earlier run (crash) would make pinning fail */
	unlink(path);
	return bpf_map__pin(map, path);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return log_libbpf((int)level, fmt, ap);
}

int splice_init(struct config *cf, int disabled)
{
	int err;

	libbpf_set_print(libbpf_print);
	snprintf(pin_dir, sizeof(pin_dir), "%s", cf->pin_path);
	err = ensure_bpffs(pin_dir);
	if (err) {
		log_warnx(
			"bpf: cannot prepare %s (%s); statistics maps not pinned, kernel path off",
			pin_dir, strerror(-err));
		return 0;
	}
	skel = splice_bpf__open();
	if (!skel) {
		log_warnx("bpf: cannot open the BPF object (%s); kernel path off", strerror(errno));
		return 0;
	}
	bpf_map__set_max_entries(skel->maps.spliced_servers, cf->nservers ? cf->nservers : 1);
	err = splice_bpf__load(skel);
	if (err) {
		log_warnx("bpf: cannot load the BPF object (%s); kernel path off", strerror(-err));
		goto err_destroy;
	}
	if ((err = pin_map(skel->maps.spliced_kern)) ||
	    (err = pin_map(skel->maps.spliced_servers))) {
		log_warnx("bpf: cannot pin maps under %s (%s)", pin_dir, strerror(-err));
		goto err_destroy;
	}
	splice_publish_stats(cf);
	log_info("bpf: maps pinned under %s%s", pin_dir,
		 disabled ? " (kernel data path disabled by --no-splice)" : "");
	/* the sockhash verdict is loaded (the probe passed); attaching it is the kernel data
	 * path's job, which does not carry bytes yet */
	return 0;

err_destroy:
	splice_bpf__destroy(skel);
	skel = NULL;
	return 0;
}

void splice_publish_stats(struct config *cf)
{
	int fd;

	if (!skel)
		return;
	fd = bpf_map__fd(skel->maps.spliced_servers);
	for (unsigned i = 0; i < cf->nservers; i++) {
		struct server *s = cf->servers[i];
		struct spliced_server_stats st;
		__u32 key = s->id;

		memset(&st, 0, sizeof(st));
		snprintf(st.pool, sizeof(st.pool), "%s", s->pool->name);
		snprintf(st.server, sizeof(st.server), "%s", s->name);
		st.requests = atomic_load(&s->requests);
		st.conn_total = atomic_load(&s->conn_total);
		st.conn_fail = atomic_load(&s->conn_fail);
		st.conn_active = (__u64)atomic_load(&s->conn_active);
		st.user_bytes_up = atomic_load(&s->bytes_up);
		st.user_bytes_down = atomic_load(&s->bytes_down);
		bpf_map_update_elem(fd, &key, &st, BPF_ANY);
	}
}

void splice_fini(void)
{
	char path[PATH_MAX + 64];

	if (!skel)
		return;
	snprintf(path, sizeof(path), "%s/spliced_kern", pin_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/spliced_servers", pin_dir);
	unlink(path);
	rmdir(pin_dir);
	splice_bpf__destroy(skel);
	skel = NULL;
}
