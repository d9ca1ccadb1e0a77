/* SPDX-License-Identifier: GPL-2.0-only */
/* Nine of the ten functions the benchmark's patch replaces; probe() is the tenth. */
#include "funcs.h"

int f0(int x) { return x * 3 + 1; }
int f1(int x) { return x * 5 + 1; }
int f2(int x) { return x * 7 + 1; }
int f3(int x) { return x * 9 + 1; }
int f4(int x) { return x * 11 + 1; }
int f5(int x) { return x * 13 + 1; }
int f6(int x) { return x * 15 + 1; }
int f7(int x) { return x * 17 + 1; }
int f8(int x) { return x * 19 + 1; }
