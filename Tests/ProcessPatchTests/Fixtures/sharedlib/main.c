/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Prints "describe TEXT" (TEXT = describe(3) from libshared.so) and
 * "calls N" every 20 ms. With "hold", one more thread calls scale(-1)
 * first and stays inside it.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern int calls;
const char *describe(int x);
int scale(int x);

static void *hold(void *arg)
{
	(void)arg;
	printf("holding\n");
	return (void *)(long)scale(-1);
}

int main(int argc, char **argv)
{
	pthread_t thread;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "hold") == 0)
		pthread_create(&thread, NULL, hold, NULL);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("describe %s\n", describe(3));
		printf("calls %d\n", calls);
		usleep(20000);
	}
}
