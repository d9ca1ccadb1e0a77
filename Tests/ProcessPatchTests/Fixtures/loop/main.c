/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A tight loop: THREADS threads (argv[1], default 4) call compute() as fast
 * as they can. The main thread prints "value C S" every 20 ms, where C is
 * compute(1) and S is scale(1): "3 2" before the patch, "5 4" after it, and
 * anything else if the two functions were ever switched apart. With
 * argv[2] = "churn", the main thread also starts a short-lived thread every
 * 2 ms, so threads come and go while suture works.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void *brief(void *arg)
{
	long s = 0;
	(void)arg;
	for (int i = 0; i < 1000; i++)
		s += compute(i & 7);
	sink = s;
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4;
	int churn = argc > 2 && strcmp(argv[2], "churn") == 0;
	pthread_attr_t detached;
	pthread_t t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_attr_init(&detached);
	pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < n; i++)
		pthread_create(&t, NULL, spin, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("value %d %d\n", compute(1), scale(1));
		for (int i = 0; i < 10; i++) {
			if (churn)
				pthread_create(&t, &detached, brief, NULL);
			usleep(2000);
		}
	}
}
