/* SPDX-License-Identifier: GPL-2.0-only */
#include <stddef.h>
int respond(char *out, size_t size, const char *request);
