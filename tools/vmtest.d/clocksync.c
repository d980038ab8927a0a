/* clocksync: set the guest's CLOCK_REALTIME from the host's, for tools/vmtest.
 *
 * The kernel takes the wall time from the emulated RTC, which has whole seconds only: the
 * guest starts 0.2-1.2 s behind the host (no drift afterwards). A file created on a 9p share is
 * stamped by the host with nanoseconds, so create one, read its mtime, and step the clock to
 * that plus the time elapsed since the middle of the create round trip.
 * Built static by tools/vmtest into the initramfs (skipped when no C compiler is around).
 *
 *   clocksync FILE   (FILE on a 9p share mounted without caching; it is removed)
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/out/.clock";
	struct timespec a, b, now, set;
	struct stat st;
	int fd;

	unlink(path);
	clock_gettime(CLOCK_MONOTONIC, &a);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return 1;
	}
	close(fd);
	unlink(path);
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long host = ns(&st.st_mtim) + ns(&now) - (ns(&a) + ns(&b)) / 2;
	set.tv_sec = host / 1000000000LL;
	set.tv_nsec = host % 1000000000LL;
	if (clock_settime(CLOCK_REALTIME, &set) < 0) {
		perror("clock_settime");
		return 1;
	}
	return 0;
}
