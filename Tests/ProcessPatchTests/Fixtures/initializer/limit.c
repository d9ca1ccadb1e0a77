/* SPDX-License-Identifier: GPL-2.0-only */
/* The diff changes the initializer of a global, which a live patch cannot do. */
int limit = 10;

int within(int x)
{
	return x <= limit;
}
