/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A thread named "napper" sleeps inside nap() for 2 s at a time and then
 * spends 0.3 s outside it; with argv[1] = "forever" it never comes out, with
 * "long" it sleeps 4 s. The main thread prints "tick N" every 50 ms with
 * N = nap(0): 1 before the patch, 2 after. The napper prints "nap enter"
 * before each nap and "nap N" after. With "spawn" (as "long"), the main
 * thread also starts a short-lived thread at every tick, which prints
 * "spawned N" with N = nap(0).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "nap.h"

static unsigned seconds = 2;
static int spawn;

static void *spawned(void *arg)
{
	(void)arg;
	printf("spawned %d\n", nap(0));
	return NULL;
}

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
	if (argc > 1 && (strcmp(argv[1], "long") == 0 || strcmp(argv[1], "spawn") == 0))
		seconds = 4;
	spawn = argc > 1 && strcmp(argv[1], "spawn") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_create(&t, NULL, napper, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("tick %d\n", nap(0));
		if (spawn) {
			pthread_t s;

			if (pthread_create(&s, NULL, spawned, NULL) == 0)
				pthread_detach(s);
		}
		usleep(50000);
	}
}
