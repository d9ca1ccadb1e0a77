// SPDX-License-Identifier: GPL-2.0-only
import Testing
import VM

@Suite struct ProtocolTests {
    static let hostMessages: [HostMessage] = [
        .run(command: "echo 'hi'; exit 3"),
        .run(command: ""),
        .upload(path: "/tmp/a b", mode: 0o4755, contents: Array(0...255)),
        .uploadShared(path: "/root/x.ko", mode: 0o644, length: 1 << 40),
        .download(path: "/proc/kallsyms"),
        .cancel,
        .release,
    ]

    static let guestMessages: [GuestMessage] = [
        .ready(release: "6.1.0-57-amd64", taint: 0x3280, log: "[    1.000000] boot\n", sharedSize: 64 << 20),
        .stdout([0, 13, 10, 255]),
        .stderr(Array("é\n".utf8)),
        .sharedOutput(toStdout: true, length: 65536),
        .sharedOutput(toStdout: false, length: 1),
        .exit(status: -1, taint: .max, log: ""),
        .exit(status: 137, taint: 0, log: "x\n"),
        .done,
        .failed("no space"),
        .file([]),
        .fileShared(length: 12),
    ]

    /// Every message survives encoding and a decoder fed one byte at a time.
    @Test func roundTripsByteByByte() throws {
        var decoder = FrameDecoder()
        var host: [HostMessage] = []
        for byte in Self.hostMessages.flatMap({ $0.frame.encoded() }) {
            decoder.append([byte])
            while let frame = try decoder.next() { host.append(try HostMessage(frame)) }
        }
        #expect(host == Self.hostMessages)
        var guest: [GuestMessage] = []
        decoder.append(Self.guestMessages.flatMap { $0.frame.encoded() })
        while let frame = try decoder.next() { guest.append(try GuestMessage(frame)) }
        #expect(guest == Self.guestMessages)
        #expect(decoder.pendingCount == 0)
    }

    @Test func frameLayoutIsMagicKindLengthPayload() {
        #expect(Frame(kind: 7, payload: [1, 2, 3]).encoded() == [0xF5, 7, 3, 0, 0, 0, 1, 2, 3])
    }

    @Test func outOfStepChannelIsAnError() {
        var decoder = FrameDecoder()
        decoder.append(Array("\r\nLinux".utf8))
        #expect(throws: VMError.self) { try decoder.next() }
    }

    /// UEFI firmware writes its console to every serial port before the
    /// kernel starts; a Secure Boot guest's decoder drops that, and only that.
    @Test func firmwareChatterBeforeTheFirstFrameIsSkippedWhenAsked() throws {
        var decoder = FrameDecoder(skippingLeadingNoise: true)
        let frame = Frame(kind: 7, payload: [1, 2, 3])
        decoder.append(Array("\u{1b}[2J\u{1b}[01;01HBdsDxe: loading Boot0001".utf8))
        #expect(try decoder.next() == nil)
        decoder.append(Array("\r\n".utf8) + frame.encoded() + Array("late bytes".utf8))
        #expect(try decoder.next() == frame)
        #expect(throws: VMError.self) { try decoder.next() }
    }

    @Test func hugeLengthIsAnError() {
        var decoder = FrameDecoder()
        decoder.append([0xF5, 1, 0xff, 0xff, 0xff, 0x7f])
        #expect(throws: VMError.self) { try decoder.next() }
    }

    @Test func truncatedPayloadIsAnError() {
        // An upload whose path claims 100 bytes but has 2.
        let frame = Frame(kind: 2, payload: [100, 0, 0, 0, 65, 66])
        #expect(throws: VMError.self) { try HostMessage(frame) }
    }

    @Test func trailingBytesAndUnknownKindsAreErrors() {
        var trailing = HostMessage.cancel.frame
        trailing.payload = [1]
        #expect(throws: VMError.self) { try HostMessage(trailing) }
        #expect(throws: VMError.self) { try GuestMessage(Frame(kind: 99, payload: [])) }
    }

    @Test func waitsForMoreBytes() throws {
        var decoder = FrameDecoder()
        let bytes = GuestMessage.done.frame.encoded()
        decoder.append(bytes.prefix(3))
        #expect(try decoder.next() == nil)
        decoder.append(bytes.dropFirst(3))
        #expect(try decoder.next().map { try GuestMessage($0) } == .done)
    }
}
