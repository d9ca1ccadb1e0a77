// SPDX-License-Identifier: GPL-2.0-only
import KernelPatch
import Platform
import TargetKernel
import VM

/// The build's kallsyms from a guest of the target kernel
/// (`suture vm --kallsyms`, cached per release).
struct GuestKallsyms: KallsymsSource {
    func kallsyms(of kernel: KernelRelease, cacheRoot: String?, progress: (String) -> Void)
        throws(BuildError) -> (text: [UInt8], source: String)
    {
        var configuration = VMConfiguration(kernel: kernel)
        if let cacheRoot { configuration.cacheRoot = cacheRoot }
        if !FileSystem.exists(Kallsyms.cachePath(release: kernel.release, cacheRoot: configuration.cacheRoot)) {
            progress("reading the symbols of \(kernel.release) from a guest (cached afterwards)")
        }
        do {
            let (text, _) = try Kallsyms.load(configuration)
            return (text, "the guest's /proc/kallsyms")
        } catch {
            throw BuildError(.io, "reading kallsyms: \(error.description)", cause: error)
        }
    }
}
