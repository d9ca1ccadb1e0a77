// SPDX-License-Identifier: GPL-2.0-only
// Template of suture build: the relocation clearing of module objects, on
// kernels whose livepatch core does not clear klp relocation targets itself.
// Inserted verbatim into the registration source.
#include <linux/elf.h>
#include <linux/string.h>
#include <asm/elf.h>

extern void *suture_text_poke_set(void *addr, int c, size_t len)
	__asm__("\".klp.sym.vmlinux.text_poke_set,0\"");

static void suture_clear_relocations(struct klp_object *obj)
{
	const struct klp_modinfo *info = THIS_MODULE->klp_info;
	char prefix[MODULE_NAME_LEN + 16];
	size_t length;
	unsigned int i;

	if (!info || !obj->name)
		return;
	length = snprintf(prefix, sizeof(prefix), ".klp.rela.%s.", obj->name);
	for (i = 1; i < info->hdr.e_shnum; i++) {
		const Elf_Shdr *section = &info->sechdrs[i];
		const Elf_Rela *entries = (const Elf_Rela *)section->sh_addr;
		size_t count = section->sh_size / sizeof(Elf_Rela), k;

		if (!(section->sh_flags & SHF_RELA_LIVEPATCH) ||
		    strncmp(info->secstrings + section->sh_name, prefix, length))
			continue;
		for (k = 0; k < count; k++) {
			void *field = (void *)info->sechdrs[section->sh_info].sh_addr + entries[k].r_offset;
			size_t width;

			switch (ELF64_R_TYPE(entries[k].r_info)) {
			case R_X86_64_64:
			case R_X86_64_PC64:
				width = 8;
				break;
			case R_X86_64_32:
			case R_X86_64_32S:
			case R_X86_64_PC32:
			case R_X86_64_PLT32:
				width = 4;
				break;
			default:
				continue;
			}
			suture_text_poke_set(field, 0, width);
		}
	}
}
