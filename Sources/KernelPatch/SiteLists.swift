// SPDX-License-Identifier: GPL-2.0-only
import ELF
import TargetKernel

/// objtool's lists of code sites (returns, retpoline calls, call-depth
/// calls). A kernel that delays objtool to the linked module
/// (`CONFIG_X86_KERNEL_IBT`, `CONFIG_LTO_CLANG`) runs it on the patch
/// module as a whole, and objtool skips a list the module already has. A
/// patch object from a single-object module carries the lists objtool made
/// for that module; kept as they are, objtool would list none of the
/// registration code's sites, and its returns would take the unpatched
/// return thunk ("Unpatched return thunk in use"). Such lists are moved
/// to `.discard.suture…`, which objtool does not read and the module link
/// drops, so that objtool lists every site of the module once.
extension LivepatchModule {
    public static let siteLists = [".return_sites", ".retpoline_sites", ".call_sites"]

    public static func objtoolRunsAtLink(_ config: KernelConfig) -> Bool {
        config["CONFIG_X86_KERNEL_IBT"] == .yes || config["CONFIG_LTO_CLANG"] == .yes
    }

    public static func deferringSiteLists(_ object: RelocatableObject) -> RelocatableObject {
        var result = object
        for i in result.sections.indices {
            let name = result.sections[i].name
            for list in siteLists {
                if name == list {
                    result.sections[i].name = ".discard.suture" + list
                } else if name == ".rela" + list {
                    result.sections[i].name = ".rela.discard.suture" + list
                }
            }
        }
        return result
    }
}
