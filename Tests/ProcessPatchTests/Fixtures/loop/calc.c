/* SPDX-License-Identifier: GPL-2.0-only */
/* The functions the patch replaces: compute() and scale() change together. */
#include "calc.h"

int scale(int x)
{
	return x * 2;
}

int compute(int x)
{
	return scale(x) + 1;
}
