/* SPDX-License-Identifier: GPL-2.0-only */
/* The function whose call overhead is measured once patched. */
#include "funcs.h"

int probe(int x)
{
	return (x ^ 0x5a5a) + 1;
}
