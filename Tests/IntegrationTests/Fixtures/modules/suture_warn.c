// SPDX-License-Identifier: GPL-2.0-only
/*
 * Provokes a kernel warning: WARN() in module init, which taints the
 * kernel W and prints a "cut here" report; the module then loads normally.
 */
#include <linux/bug.h>
#include <linux/init.h>
#include <linux/module.h>

static int __init suture_warn_init(void)
{
	WARN(1, "suture_warn: a warning on purpose\n");
	return 0;
}
module_init(suture_warn_init);

static void __exit suture_warn_exit(void)
{
}
module_exit(suture_warn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Suture test: a kernel warning at load time");
