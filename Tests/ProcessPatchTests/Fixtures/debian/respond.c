/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The function being replaced builds the response to one request line
 * "GET NAME": "hello NAME v1" before the patch, "hello NAME v2" after. It
 * calls into libc (snprintf, strncmp), so the patch needs calls that reach
 * a shared library more than 2 GiB away.
 */
#include <stdio.h>
#include <string.h>
#include "respond.h"

int respond(char *out, size_t size, const char *request)
{
	if (strncmp(request, "GET ", 4) != 0)
		return snprintf(out, size, "error\n");
	return snprintf(out, size, "hello %s v1\n", request + 4);
}
