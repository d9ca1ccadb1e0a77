/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Recursion through the function being replaced: every level keeps a frame
 * (the volatile read after the call rules out turning it into a loop).
 * descend(n) is n before the patch and n + 1000 after.
 */
#include "descend.h"

int descend(int depth)
{
	volatile int here = depth;

	if (depth == 0)
		return 0;
	return descend(depth - 1) + (here == depth ? 1 : 0);
}
