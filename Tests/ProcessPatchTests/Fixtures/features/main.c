/* SPDX-License-Identifier: GPL-2.0-only */
/* Prints "label TEXT" with TEXT = label(1) every 20 ms. */
#include <stdio.h>
#include <unistd.h>

const char *label(int x);

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("label %s\n", label(1));
		usleep(20000);
	}
}
