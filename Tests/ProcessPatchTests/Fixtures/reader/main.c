/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A thread blocked in read(2) on standard input (a pipe from the test).
 * Each line read is transformed and printed as "got LINE". A read
 * interrupted by a signal or a ptrace attach (EINTR) is retried, as real
 * programs must; any other failure ends the program with "read failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "xform.h"

static void *reader(void *arg)
{
	char buf[256];

	(void)arg;
	pthread_setname_np(pthread_self(), "reader");
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf - 1);
		if (n < 0 && errno == EINTR) {
			printf("eintr\n");
			continue;
		}
		if (n <= 0) {
			printf("read failed: %s\n", n < 0 ? strerror(errno) : "end of file");
			return NULL;
		}
		buf[n] = 0;
		transform(buf);
		printf("got %s", buf);
	}
}

int main(void)
{
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_create(&t, NULL, reader, NULL);
	printf("ready %d\n", getpid());
	pthread_join(t, NULL);
	return 0;
}
