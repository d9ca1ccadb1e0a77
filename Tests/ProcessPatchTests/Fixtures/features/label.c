/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The patch adds data and code around label(): a new zero-initialized and a
 * new initialized static, a new static function, new strings, and a call to
 * a libc function the program does not import. It keeps using the
 * program's global, static variable, static function and static local
 * buffer.
 */
#include <stdio.h>
#include <stdlib.h>

int total = 5;
static int base = 100;

__attribute__((noinline)) static int twice(int x)
{
	return 2 * x + (base & 1);
}

const char *label(int x)
{
	static char buf[64];

	snprintf(buf, sizeof buf, "old %d", twice(x) + base + total);
	return buf;
}
