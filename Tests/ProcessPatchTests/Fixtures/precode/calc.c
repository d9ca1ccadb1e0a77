/* SPDX-License-Identifier: GPL-2.0-only */
#include "calc.h"

/* rebuild.diff changes this; the compiler inlines it into compute(). */
static int offset(void)
{
	return 1;
}

/*
 * patch.diff changes compute() itself. The two changes sit far enough
 * apart that either diff applies with or without the other.
 */
int compute(int x)
{
	return x * 2 + offset();
}
