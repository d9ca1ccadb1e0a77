/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * THREADS threads (argv[1]) call the ten patched functions, f0…f8 and
 * probe(). "server" threads (argv[2]) call them 1000 times, then rest 1 ms,
 * like the threads of a server. "busy" threads never rest: they compute
 * outside the patched functions and call each of them once in a while, so
 * they always want a CPU. The main thread times 20 million calls of probe()
 * and of plain() (the same code in another file) in turn and prints
 * "probe P plain Q" in nanoseconds per call, over and over.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "funcs.h"

static int busy;
static volatile long sink;

static void *worker(void *arg)
{
	int (*const table[10])(int) = { f0, f1, f2, f3, f4, f5, f6, f7, f8, probe };
	long s = 0;
	(void)arg;
	for (;;) {
		if (busy) {
			for (long k = 0; k < 200000; k++)
				s = s * 31 + k;
			for (int i = 0; i < 10; i++)
				s += table[i](i);
		} else {
			for (int i = 0; i < 1000; i++)
				s += table[i % 10](i);
			usleep(1000);
		}
		sink = s;
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double per_call(int (*f)(int))
{
	const int calls = 20000000;
	long s = 0;
	double start = now();
	for (int i = 0; i < calls; i++)
		s += f(i);
	sink = s;
	return (now() - start) / calls;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 32;
	pthread_t t;

	busy = argc > 2 && strcmp(argv[2], "busy") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < threads; i++)
		pthread_create(&t, NULL, worker, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		double p = per_call(probe);
		double q = per_call(plain);
		printf("probe %.3f plain %.3f\n", p, q);
	}
}
