// SPDX-License-Identifier: GPL-2.0-only
import Platform
import TargetKernel

/// The kernel file QEMU boots.
///
/// A distribution's bzImage spends about 3 s of a 6 s TCG boot
/// decompressing itself in emulated code. A kernel built with `CONFIG_PVH`
/// can instead be booted from its uncompressed ELF `vmlinux` through the
/// PVH entry point, which QEMU supports for `-kernel`: the same code, but
/// without the decompressor, and so also without its KASLR step. The
/// `vmlinux` is cut out of the bzImage by `KernelImage` (TargetKernel),
/// decompressed once on the host and cached per image.
public struct BootKernel: Sendable, Equatable {
    /// The file to pass to `-kernel`.
    public let path: String
    /// Whether `path` is the uncompressed vmlinux, booted through PVH.
    public let isPVH: Bool

    /// The bzImage itself.
    public static func bzImage(_ release: KernelRelease) -> BootKernel {
        BootKernel(path: release.image, isPVH: false)
    }

    /// The cached vmlinux when the kernel supports PVH and it can be
    /// extracted, else the bzImage. `cacheDirectory` nil or unwritable
    /// means no fast boot.
    public static func prepare(_ release: KernelRelease, cacheDirectory: String?) -> BootKernel {
        guard let cacheDirectory, KernelImage.supportsPVH(release),
            let cached = KernelImage.cachedVmlinux(release, cacheDirectory: cacheDirectory)
        else { return bzImage(release) }
        return BootKernel(path: cached, isPVH: true)
    }
}
