# SPDX-License-Identifier: GPL-2.0-only
#
# The rules of a stand-in kernel tree: the tests put VERSION, PATCHLEVEL
# and SUBLEVEL lines above these and pack the folder as a tarball, so that
# `suture kernel prepare --source` runs every step of a prepare (unpack,
# version check, olddefconfig, modules_prepare, manifest, rename) in a
# second instead of a minute. `make -C TREE O=_build TARGET` runs them.

olddefconfig:
	@test -f $(O)/.config || { echo "no $(O)/.config" >&2; exit 1; }
	@echo "  CONF    $(O)/.config"

modules_prepare:
	@mkdir -p $(O)/include/generated
	@echo '#define UTS_RELEASE "$(KERNELRELEASE)"' > $(O)/include/generated/utsrelease.h
	@echo "  UPD     include/generated/utsrelease.h"
	@if [ -n "$$SUTURE_TEST_STALL" ]; then touch $(O)/stalled; sleep 20; fi

.PHONY: olddefconfig modules_prepare
