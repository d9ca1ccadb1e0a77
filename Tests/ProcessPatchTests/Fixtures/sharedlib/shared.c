/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A shared library mapped by several processes at once. Its code is PIC:
 * label() reaches scale() through the PLT and the exported counter
 * `calls` through the GOT, and the program reads `calls` too, so the
 * program holds the counter (a copy relocation) and the library's GOT
 * points there. A patch must use the same copy.
 */
#include <stdio.h>
#include <unistd.h>

int calls;

int scale(int x)
{
	if (x < 0)
		pause(); /* a caller that stays inside scale() */
	return x * 2;
}

/* Static: in a stripped library, only its debug file names it. */
static __attribute__((noinline)) const char *label(int x)
{
	static char text[32];

	calls++;
	snprintf(text, sizeof text, "v1 %d", scale(x));
	return text;
}

const char *describe(int x)
{
	return label(x);
}
