/* SPDX-License-Identifier: GPL-2.0-only */
/* The function being replaced: upper case before the patch, lower case after. */
#include <ctype.h>
#include "xform.h"

void transform(char *s)
{
	for (; *s; s++)
		*s = (char)toupper((unsigned char)*s);
}
