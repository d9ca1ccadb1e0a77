/* SPDX-License-Identifier: GPL-2.0-only */
/* A shared library; the patch replaces its functions, not the program's. */
#include <stdio.h>

static int counter;

int scale(int x)
{
	return x * 2;
}

const char *describe(int x)
{
	static char text[32];

	counter++;
	snprintf(text, sizeof text, "v1 %d", scale(x));
	return text;
}
