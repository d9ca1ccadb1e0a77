// SPDX-License-Identifier: GPL-2.0-only
import Platform
import Testing

@Suite struct JSONTests {
    @Test func roundTripKeepsKeyOrder() throws {
        let value: JSON = .object([
            ("b", .int(1)), ("a", .array([.string("x\n\"y"), .null, .bool(true)])), ("c", .double(1.5)),
        ])
        let text = value.serialized()
        #expect(text == #"{"b":1,"a":["x\n\"y",null,true],"c":1.5}"#)
        #expect(try JSON.parse(text) == value)
    }

    @Test func parseErrorsNameTheOffset() {
        #expect(throws: PlatformError.self) { try JSON.parse("{\"a\": [1, 2}") }
        do {
            _ = try JSON.parse("[1, ]")
        } catch {
            #expect(error.description.contains("byte 4"))
        }
    }

    @Test func sha256KnownVectors() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hex(long) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
