// SPDX-License-Identifier: MIT
/*
 * spare.c - a worker's spare buffers and pipes, and giving heap back after a spike (spare.h).
 *
 * Why a cap: connections come in waves (a burst of clients, a slowloris). Keeping every buffer
 * a wave used would hold its peak memory for ever; freeing every one makes the steady state
 * pay malloc for each request. The spare stack absorbs the ordinary churn; beyond the cap the
 * memory goes back to malloc, and after a wave malloc_trim() hands the free pages of the
 * heap to the kernel (glibc keeps freed chunks in its arenas otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "spare.h"

int spare_init(struct spare *s, uint32_t size, uint32_t pipe_size, unsigned max)
{
	s->bufs = calloc(max ? max : 1, sizeof(*s->bufs));
	s->pipes = calloc(max ? max : 1, sizeof(*s->pipes));
	if (!s->bufs || !s->pipes) {
		free(s->bufs);
		free(s->pipes);
		s->bufs = NULL;
		s->pipes = NULL;
		return -ENOMEM;
	}
	s->nbufs = s->npipes = 0;
	s->max = max;
	s->size = size;
	s->pipe_size = pipe_size;
	return 0;
}

void spare_config(struct spare *s, uint32_t size, uint32_t pipe_size, unsigned max)
{
	char **bufs = calloc(max ? max : 1, sizeof(*bufs));
	int(*pipes)[2] = calloc(max ? max : 1, sizeof(*pipes));

	if (!bufs || !pipes) {
		/* keep the old arrays and cap; only drop buffers of the wrong size */
		free(bufs);
		free(pipes);
		max = s->max;
	} else {
		unsigned nb = 0, np = 0;

		for (unsigned i = 0; i < s->nbufs; i++)
			if (nb < max && size == s->size)
				bufs[nb++] = s->bufs[i];
			else
				free(s->bufs[i]);
		for (unsigned i = 0; i < s->npipes; i++) {
			if (np < max) {
				pipes[np][0] = s->pipes[i][0];
				pipes[np++][1] = s->pipes[i][1];
			} else {
				close(s->pipes[i][0]);
				close(s->pipes[i][1]);
			}
		}
		free(s->bufs);
		free(s->pipes);
		s->bufs = bufs;
		s->pipes = pipes;
		s->nbufs = nb;
		s->npipes = np;
	}
	if (size != s->size) {
		for (unsigned i = 0; i < s->nbufs; i++)
			free(s->bufs[i]);
		s->nbufs = 0;
	}
	s->max = max;
	s->size = size;
	s->pipe_size = pipe_size;
}

void spare_destroy(struct spare *s)
{
	for (unsigned i = 0; i < s->nbufs; i++)
		free(s->bufs[i]);
	for (unsigned i = 0; i < s->npipes; i++) {
		close(s->pipes[i][0]);
		close(s->pipes[i][1]);
	}
	free(s->bufs);
	free(s->pipes);
	s->bufs = NULL;
	s->pipes = NULL;
	s->nbufs = s->npipes = 0;
}

void spare_count(struct spare *s, int64_t bytes)
{
	s->live += (uint64_t)bytes;
	if (s->live > s->peak)
		s->peak = s->live;
}

int spare_buf_get(struct spare *s, struct buf *b, uint32_t size)
{
	char *p;

	if (size == s->size && s->nbufs)
		p = s->bufs[--s->nbufs];
	else if (!(p = malloc(size)))
		return -ENOMEM;
	b->data = p;
	b->start = b->end = 0;
	b->cap = size;
	spare_count(s, size);
	return 0;
}

void spare_buf_put(struct spare *s, struct buf *b)
{
	if (!b->data)
		return;
	spare_count(s, -(int64_t)b->cap);
	if (b->cap == s->size && s->nbufs < s->max)
		s->bufs[s->nbufs++] = b->data;
	else
		free(b->data);
	b->data = NULL;
	b->start = b->end = b->cap = 0;
}

int spare_pipe_get(struct spare *s, int p[2])
{
	if (s->npipes) {
		s->npipes--;
		p[0] = s->pipes[s->npipes][0];
		p[1] = s->pipes[s->npipes][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	/* a larger pipe moves more per splice call; failure only costs speed */
	(void)fcntl(p[1], F_SETPIPE_SZ, (int)s->pipe_size);
	return 0;
}

void spare_pipe_put(struct spare *s, int p[2])
{
	int queued = -1;

	if (p[0] < 0)
		return;
	/* the caller's count of bytes in the pipe is not trusted with another client's data */
	if (s->npipes < s->max && ioctl(p[0], FIONREAD, &queued) == 0 && queued == 0) {
		s->pipes[s->npipes][0] = p[0];
		s->pipes[s->npipes][1] = p[1];
		s->npipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

int spare_sweep(struct spare *s)
{
	if (s->peak < s->live + SPARE_TRIM_MIN || s->live >= s->peak / 2)
		return 0;
	/* the spare buffers themselves are the steady state's: keep them, trim the rest */
	malloc_trim(0);
	s->peak = s->live;
	s->trims++;
	return 1;
}
