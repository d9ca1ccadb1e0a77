// SPDX-License-Identifier: GPL-2.0-only
import Glibc
import Platform

/// How QEMU runs the guest's CPU.
public enum Accelerator: String, Sendable, CaseIterable {
    /// Hardware virtualisation through /dev/kvm, with the host's CPU model.
    case kvm
    /// QEMU's emulator, with every CPU feature it can emulate.
    case tcg

    var qemuArguments: [String] {
        switch self {
        case .kvm: return ["-accel", "kvm", "-cpu", "host"]
        case .tcg: return ["-accel", "tcg", "-cpu", "max"]
        }
    }

    /// KVM when it really works here, else TCG.
    ///
    /// `/dev/kvm` may exist and still fail: nested KVM on some hosts stops
    /// QEMU with an MSR assertion, or hangs in the firmware. So the probe
    /// boots the kernel under KVM without a root file system and expects
    /// its "Kernel panic" line within `timeout` seconds. The answer is
    /// cached in `cacheDirectory`, keyed by host kernel and QEMU binary.
    public static func detect(
        qemu: String, kernel: BootKernel, cacheDirectory: String?,
        timeout: Double = 20
    ) -> Accelerator {
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return .tcg }
        let key = probeKey(qemu: qemu)
        let cacheFile = cacheDirectory.map { Path.join($0, "accelerator") }
        if let cacheFile, let text = FileSystem.readTextIfPresent(cacheFile) {
            let lines = text.split(separator: "\n").map(String.init)
            if lines.count == 2, lines[0] == key, let cached = Accelerator(rawValue: lines[1]) { return cached }
        }
        let answer: Accelerator = probe(qemu: qemu, kernel: kernel, timeout: timeout) ? .kvm : .tcg
        if let cacheDirectory, let cacheFile {
            try? FileSystem.makeDirectories(cacheDirectory)
            try? FileSystem.writeAtomically(cacheFile, Array("\(key)\n\(answer.rawValue)\n".utf8))
        }
        return answer
    }

    static func probeKey(qemu: String) -> String {
        let st = try? FileSystem.status(qemu)
        return "host=\(Kernel.release()) qemu=\(qemu) size=\(st?.st_size ?? 0) mtime=\(st?.st_mtim.tv_sec ?? 0)"
    }

    static func probe(qemu: String, kernel: BootKernel, timeout: Double) -> Bool {
        let argv =
            [qemu] + Accelerator.kvm.qemuArguments + [
                "-m", "256", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", kernel.path, "-append", "console=ttyS0 loglevel=1 panic=-1",
                "-serial", "stdio",
            ]
        guard let result = try? Command.run(argv, timeout: timeout) else { return false }
        return !result.timedOut && result.stdoutText.contains("Kernel panic")
    }
}
