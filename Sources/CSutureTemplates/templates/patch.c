// SPDX-License-Identifier: GPL-2.0-only
// Template of suture build: the klp_patch of the generated registration
// source and the module's entry points. @REPLACE@ becomes true or false.

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.replace = @REPLACE@,
};

static int __init suture_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit suture_patch_exit(void)
{
}

module_init(suture_patch_init);
module_exit(suture_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("Live patch built by suture");
