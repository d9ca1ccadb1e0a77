/* SPDX-License-Identifier: GPL-2.0-only */
#include <stdio.h>

int within(int x);

int main(void)
{
	printf("%d\n", within(15));
	return 0;
}
