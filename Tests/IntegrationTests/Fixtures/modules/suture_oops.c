// SPDX-License-Identifier: GPL-2.0-only
/*
 * Provokes a non-fatal oops: module init writes through a NULL pointer.
 * The oops kills the insmod process; with panic_on_oops off (the Debian
 * default) the kernel carries on, tainted D. The module stays half-loaded,
 * which does not matter in a throwaway guest.
 */
#include <linux/init.h>
#include <linux/module.h>

static int __init suture_oops_init(void)
{
	int *volatile target = NULL;

	pr_info("suture_oops: writing through a NULL pointer\n");
	*target = 1;
	return 0;
}
module_init(suture_oops_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test: a non-fatal oops at load time");
