/* SPDX-License-Identifier: GPL-2.0-only */
/* Prints "value N" with N = compute(1) every 20 ms. */
#include <stdio.h>
#include <unistd.h>
#include "calc.h"

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	for (;;) {
		printf("value %d\n", compute(1));
		usleep(20000);
	}
}
