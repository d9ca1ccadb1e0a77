// SPDX-License-Identifier: GPL-2.0-only
#ifndef CSUTURE_TEMPLATES_H
#define CSUTURE_TEMPLATES_H

/// templates/clear-relocations.c, NUL-terminated.
const char *suture_template_clear_relocations(void);
/// templates/patch.c, NUL-terminated.
const char *suture_template_patch(void);

#endif
