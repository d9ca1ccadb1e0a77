/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A tight loop: THREADS threads (argv[1], default 4) call compute() as fast
 * as they can. The main thread prints "value C S" every 20 ms, where C is
 * compute(1) and S is scale(1): "3 2" before the patch, "5 4" after it, and
 * anything else if the two functions were ever switched apart.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "calc.h"

static volatile long sink;

static void *spin(void *arg)
{
	long s = 0;
	(void)arg;
	for (;;) {
		s += compute((int)(s & 7));
		sink = s;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < n; i++)
		pthread_create(&t, NULL, spin, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("value %d %d\n", compute(1), scale(1));
		usleep(20000);
	}
}
