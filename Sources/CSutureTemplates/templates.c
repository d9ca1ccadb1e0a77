// SPDX-License-Identifier: GPL-2.0-only
// The C templates of the livepatch module's registration source, embedded
// in the binary at compile time (C23 #embed), so that `suture build` needs
// no resource files next to it.
#include "CSutureTemplates.h"

#pragma clang diagnostic ignored "-Wc23-extensions"

static const char clear_relocations[] = {
#embed "templates/clear-relocations.c"
    , 0
};

static const char patch[] = {
#embed "templates/patch.c"
    , 0
};

const char *suture_template_clear_relocations(void) { return clear_relocations; }

const char *suture_template_patch(void) { return patch; }
