// SPDX-License-Identifier: GPL-2.0-only

/// A newc reader for the tests, written from the format description, so
/// archives the writer makes can be checked entry by entry.
struct CpioEntry: Equatable {
    var name: String
    var mode: UInt32
    var data: [UInt8]
    var rdevMajor: UInt32
    var rdevMinor: UInt32

    var type: UInt32 { mode & 0o170000 }
    var permissions: UInt32 { mode & 0o7777 }
    var text: String { String(decoding: data, as: UTF8.self) }
}

enum CpioReadError: Error { case bad(String) }

func readCpio(_ bytes: [UInt8]) throws -> [CpioEntry] {
    var entries: [CpioEntry] = []
    var offset = 0
    func field(_ index: Int) throws -> UInt32 {
        let start = offset + 6 + index * 8
        guard let v = UInt32(String(decoding: bytes[start..<start + 8], as: UTF8.self), radix: 16) else {
            throw CpioReadError.bad("field \(index) at \(offset)")
        }
        return v
    }
    func align(_ n: Int) -> Int { (n + 3) & ~3 }
    while true {
        guard offset + 110 <= bytes.count else { throw CpioReadError.bad("truncated header at \(offset)") }
        guard String(decoding: bytes[offset..<offset + 6], as: UTF8.self) == "070701" else {
            throw CpioReadError.bad("bad magic at \(offset)")
        }
        let mode = try field(1)
        let size = Int(try field(6))
        let rdevMajor = try field(9)
        let rdevMinor = try field(10)
        let nameSize = Int(try field(11))
        let nameStart = offset + 110
        guard bytes[nameStart + nameSize - 1] == 0 else {
            throw CpioReadError.bad("name not NUL-terminated at \(offset)")
        }
        let name = String(decoding: bytes[nameStart..<nameStart + nameSize - 1], as: UTF8.self)
        let dataStart = align(nameStart + nameSize)
        guard dataStart + size <= bytes.count else { throw CpioReadError.bad("truncated data of \(name)") }
        if name == "TRAILER!!!" { return entries }
        entries.append(
            CpioEntry(
                name: name, mode: mode, data: Array(bytes[dataStart..<dataStart + size]),
                rdevMajor: rdevMajor, rdevMinor: rdevMinor))
        offset = align(dataStart + size)
    }
}
