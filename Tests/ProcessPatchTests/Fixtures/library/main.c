/* SPDX-License-Identifier: GPL-2.0-only */
/* Prints "describe TEXT" with TEXT = describe(3) from libcalc.so every 20 ms. */
#include <stdio.h>
#include <unistd.h>

const char *describe(int x);

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("describe %s\n", describe(3));
		usleep(20000);
	}
}
