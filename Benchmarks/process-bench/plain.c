/* SPDX-License-Identifier: GPL-2.0-only */
/* The same function, never patched: the baseline in the same run. */
#include "funcs.h"

int plain(int x)
{
	return (x ^ 0x5a5a) + 1;
}
