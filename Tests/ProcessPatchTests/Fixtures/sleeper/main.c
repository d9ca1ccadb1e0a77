/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A thread named "napper" sleeps inside nap() for 2 s at a time and then
 * spends 0.3 s outside it; with argv[1] = "forever" it never comes out. The
 * main thread prints "tick N" every 50 ms with N = nap(0): 1 before the
 * patch, 2 after. The napper prints "nap enter" before each nap and
 * "nap N" after.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "nap.h"

static unsigned seconds = 2;

static void *napper(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "napper");
	for (;;) {
		printf("nap enter\n");
		printf("nap %d\n", nap(seconds));
		usleep(300000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc > 1 && strcmp(argv[1], "forever") == 0)
		seconds = 1000000;
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_create(&t, NULL, napper, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("tick %d\n", nap(0));
		usleep(50000);
	}
}
