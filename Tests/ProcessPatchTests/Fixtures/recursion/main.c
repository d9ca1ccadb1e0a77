/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Two threads recurse 20000 levels deep through descend(), again and again
 * with a 2 ms rest; the main thread prints "depth N" with N = descend(100)
 * every 20 ms, and "bad N" if a deep recursion ever returned a value that
 * is neither the old nor the new result.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include "descend.h"

#define DEEP 20000

static volatile int bad;

static void *deep(void *arg)
{
	(void)arg;
	for (;;) {
		int r = descend(DEEP);
		if (r != DEEP && r != DEEP + 1000)
			bad = r;
		usleep(2000);
	}
	return NULL;
}

int main(void)
{
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&t, NULL, deep, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		if (bad)
			printf("bad %d\n", bad);
		printf("depth %d\n", descend(100));
		usleep(20000);
	}
}
