// SPDX-License-Identifier: MIT
/*
 * privdrop.c - become the configured `user` once everything that needs root is open: the BPF
 * object is loaded and attached, maps are pinned, listeners are bound, the access log and the
 * control socket are open. Runs before any thread starts (capabilities are per thread).
 *
 * What is kept (everything else, in every set, is dropped, and no_new_privs is set):
 *   CAP_NET_BIND_SERVICE  only when a listener binds a port below 1024, so that a reload can
 *                         open such a listener again
 *   CAP_BPF               only on kernels that check it for every bpf() call on an existing
 *                         map (before 6.5 with kernel.unprivileged_bpf_disabled set): probed
 *                         by dropping it from the effective set first and trying a map lookup
 * The pin directory, the pinned maps and the access log are handed to the user, so that a
 * reload can reopen the log and the maps are unpinned at exit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"
#include "splice.h"
#include "worker.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int capset_bits(uint64_t permitted, uint64_t effective)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[0].permitted = (uint32_t)permitted;
	data[1].permitted = (uint32_t)(permitted >> 32);
	data[0].effective = (uint32_t)effective;
	data[1].effective = (uint32_t)(effective >> 32);
	return (int)syscall(SYS_capset, &hdr, data);
}

static int low_port_bound(const struct config *cf)
{
	for (unsigned i = 0; i < cf->nlisteners; i++)
		for (unsigned b = 0; b < cf->listeners[i].nbinds; b++) {
			const struct sockaddr_storage *ss = &cf->listeners[i].binds[b].addr;
			unsigned port =
				ss->ss_family == AF_INET6
					? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
					: ntohs(((const struct sockaddr_in *)ss)->sin_port);

			if (port < 1024)
				return 1;
		}
	return 0;
}

/* give the pin directory and its maps to the user (unpinning at exit needs it) */
static void chown_pins(const char *dir, uid_t uid, gid_t gid)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strncmp(e->d_name, "spliced_", 8) &&
		    fchownat(dirfd(d), e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) == -1)
			log_warn("privdrop: chown %s/%s", dir, e->d_name);
	}
	closedir(d);
	if (chown(dir, uid, gid) == -1)
		log_warn("privdrop: chown %s", dir);
}

int privdrop(const struct config *cf, int access_fd, const char *control_path)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;
	uint64_t keep = 0;
	struct stat st;

	if (!cf->user[0])
		return 0;
	pw = getpwnam(cf->user);
	if (!pw) {
		log_warnx("privdrop: unknown user '%s'", cf->user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (cf->group[0]) {
		struct group *gr = getgrnam(cf->group);

		if (!gr) {
			log_warnx("privdrop: unknown group '%s'", cf->group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (uid == 0)
		return 0;
	if (getuid() == uid && geteuid() == uid) {
		/* started by a process that had already dropped (live upgrade) */
		capset_bits(0, 0);
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		log_info("privdrop: running as %s already", cf->user);
		return 0;
	}

	if (stat(cf->file, &st) == 0 && !(st.st_mode & S_IROTH) &&
	    !(st.st_uid == uid && (st.st_mode & S_IRUSR)) &&
	    !(st.st_gid == gid && (st.st_mode & S_IRGRP)))
		log_warnx("privdrop: %s is not readable by %s: reloads will fail", cf->file,
			  cf->user);
	chown_pins(cf->pin_path, uid, gid);
	if (access_fd >= 0 && fstat(access_fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    fchown(access_fd, uid, gid) == -1)
		log_warn("privdrop: chown access log");
	if (control_path && control_path[0] && chown(control_path, uid, gid) == -1)
		log_warn("privdrop: chown %s", control_path);
	/* a live upgrade's new process (running as the user) rewrites it */
	if (cf->pid_file[0] && chown(cf->pid_file, uid, gid) == -1)
		log_warn("privdrop: chown %s", cf->pid_file);

	if (low_port_bound(cf))
		keep |= 1ull << CAP_NET_BIND_SERVICE;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1 || setgroups(1, &gid) == -1 ||
	    setgid(gid) == -1 || setuid(uid) == -1) {
		log_warn("privdrop: cannot become %s", cf->user);
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	/* CAP_BPF stays permitted but not effective while probing whether it is needed */
	if (capset_bits(keep | (1ull << CAP_BPF), keep) == -1) {
		log_warn("privdrop: capset");
		return -1;
	}
	if (splice_probe_access()) {
		keep |= 1ull << CAP_BPF;
		log_info("privdrop: keeping CAP_BPF: this kernel checks it for every bpf() call");
	}
	if (capset_bits(keep, keep) == -1) {
		log_warn("privdrop: capset");
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (setuid(0) == 0) {
		log_warnx("privdrop: could become root again after dropping");
		return -1;
	}
	log_info("privdrop: running as %s (uid %u, gid %u), capabilities kept: %s%s%s", cf->user,
		 (unsigned)uid, (unsigned)gid, keep ? "" : "none",
		 keep & (1ull << CAP_NET_BIND_SERVICE) ? "cap_net_bind_service " : "",
		 keep & (1ull << CAP_BPF) ? "cap_bpf" : "");
	return 0;
}
