// SPDX-License-Identifier: GPL-2.0-only
import ArgumentParser
import Livepatch
import Platform

// What the shell completions (`suture --generate-completion-script SHELL`)
// offer beyond files: the names of loaded and installed patches and the
// kernel releases Suture knows. Each runs in the completing shell, so it
// reads only what an unprivileged user can and never fails.

/// Loaded livepatch modules (/sys/kernel/livepatch) and patches installed
/// for the running kernel, that start with the word being completed.
@Sendable func patchNameCompletions(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
    var names = (try? FileSystem.list("/sys/kernel/livepatch")) ?? []
    let store = PatchStore.configured()
    let release = FileSystem.readTextIfPresent("/proc/sys/kernel/osrelease")?.trimmingWhitespace() ?? ""
    for file in (try? FileSystem.list(store.directory(release))) ?? [] where file.hasSuffix(".json") {
        names.append(String(file.dropLast(5)))
    }
    return Array(Set(names)).sorted().filter { $0.hasPrefix(prefix) }
}

/// Installed kernels (/lib/modules) and kernels fetched into the cache.
@Sendable func kernelReleaseCompletions(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
    var releases = (try? FileSystem.list("/lib/modules")) ?? []
    let cache = FileSystem.environment("SUTURE_CACHE") ?? "/var/cache/suture"
    releases += ((try? FileSystem.list(Path.join(cache, "kernels"))) ?? []).filter { !$0.hasPrefix(".") }
    return Array(Set(releases)).sorted().filter { $0.hasPrefix(prefix) }
}

/// Module files, also compressed.
let moduleExtensions = ["ko", "ko.xz", "ko.zst"]
