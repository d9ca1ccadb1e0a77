// SPDX-License-Identifier: GPL-2.0-only

/// The signature appended to a kernel module, as `sign-file` writes it and
/// `modinfo` shows it: the module's bytes, a PKCS#7 message, a 12-byte
/// `struct module_signature` and the marker `~Module signature appended~\n`.
///
/// The kernel checks it in `mod_verify_sig` (kernel/module/signing.c); the
/// signer is found by the issuer and serial number of the PKCS#7 signer
/// info, as kmod's `libkmod-signature.c` reports them.
public struct ModuleSignature: Sendable, Equatable {
    /// The trailer `sign-file` ends a signed module with.
    public static let marker = Array("~Module signature appended~\n".utf8)

    /// The signer's common name (the issuer of the signer info), as
    /// `modinfo -F signer` prints it; nil when the message has none.
    public var signer: String?
    /// The certificate's serial number, `AB:CD:…`, as `modinfo -F sig_key`.
    public var keySerial: String?
    /// The digest algorithm, e.g. `sha256`.
    public var hashAlgorithm: String?
    /// Bytes of the module before the signature: what was signed.
    public var signedLength: Int

    /// The signature of a module image, nil when it carries none. A
    /// trailer that is present but garbled yields a signature with no
    /// signer: the kernel will reject it.
    public static func read(_ image: [UInt8]) -> ModuleSignature? {
        let marker = Self.marker
        guard image.count >= marker.count + 12,
            image[(image.count - marker.count)...].elementsEqual(marker)
        else { return nil }
        let info = image.count - marker.count - 12
        // struct module_signature: algo, hash, id_type, signer_len,
        // key_id_len, pad[3], sig_len (big endian).
        let length = image[(info + 8)..<(info + 12)].reduce(0) { $0 << 8 | Int($1) }
        guard image[info + 2] == 2, length > 0, length <= info else {
            return ModuleSignature(signedLength: max(0, info - max(0, length)))
        }
        let message = Array(image[(info - length)..<info])
        var signature = ModuleSignature(signedLength: info - length)
        if let signerInfo = PKCS7.signerInfo(message) {
            signature.signer = signerInfo.commonName
            signature.keySerial = signerInfo.serial
            signature.hashAlgorithm = signerInfo.digest
        }
        return signature
    }

    init(signer: String? = nil, keySerial: String? = nil, hashAlgorithm: String? = nil, signedLength: Int) {
        self.signer = signer
        self.keySerial = keySerial
        self.hashAlgorithm = hashAlgorithm
        self.signedLength = signedLength
    }

    /// `CN (sha256, key AB:CD…)`, for list and status.
    public var summary: String {
        var text = signer ?? "unreadable signature"
        var details: [String] = []
        if let hashAlgorithm { details.append(hashAlgorithm) }
        if let keySerial { details.append("key \(keySerial)") }
        if !details.isEmpty { text += " (\(details.joined(separator: ", ")))" }
        return text
    }
}

// MARK: - DER

/// Just enough DER to read a PKCS#7 `SignedData` signer info (RFC 2315).
enum PKCS7 {
    struct SignerInfo {
        var commonName: String?
        var serial: String?
        var digest: String?
    }

    struct Element {
        let tag: UInt8
        let content: ArraySlice<UInt8>

        /// The elements inside a constructed element.
        var children: [Element] {
            var result: [Element] = []
            var offset = content.startIndex
            while offset < content.endIndex, let (element, next) = DER.element(content, at: offset) {
                result.append(element)
                offset = next
            }
            return result
        }
    }

    /// ContentInfo → [0] SignedData → the first SignerInfo.
    static func signerInfo(_ message: [UInt8]) -> SignerInfo? {
        guard let (top, _) = DER.element(message[...], at: 0), top.tag == 0x30 else { return nil }
        let content = top.children
        guard content.count >= 2, content[1].tag == 0xA0,
            let signedData = content[1].children.first, signedData.tag == 0x30,
            let signerInfos = signedData.children.last, signerInfos.tag == 0x31,
            let info = signerInfos.children.first, info.tag == 0x30
        else { return nil }
        let fields = info.children
        guard fields.count >= 3 else { return nil }
        var result = SignerInfo()
        if fields[1].tag == 0x30 {
            // IssuerAndSerialNumber: Name, INTEGER.
            let parts = fields[1].children
            if let issuer = parts.first { result.commonName = commonName(issuer) }
            if parts.count > 1 {
                result.serial = parts[1].content.map { hexByte($0) }.joined(separator: ":")
            }
        } else if fields[1].tag == 0x80 {
            // [0] SubjectKeyIdentifier (sign-file -k).
            result.serial = fields[1].content.map { hexByte($0) }.joined(separator: ":")
        }
        if let oid = fields[2].children.first, oid.tag == 0x06 {
            result.digest = digestNames[Array(oid.content)]
        }
        return result
    }

    /// The CN of an X.501 Name: SEQUENCE OF SET OF {OID, value}.
    static func commonName(_ name: Element) -> String? {
        for set in name.children {
            for pair in set.children {
                let parts = pair.children
                guard parts.count == 2, parts[0].tag == 0x06, Array(parts[0].content) == [0x55, 0x04, 0x03] else {
                    continue
                }
                return String(decoding: parts[1].content, as: UTF8.self)
            }
        }
        return nil
    }

    static let digestNames: [[UInt8]: String] = [
        [0x2B, 0x0E, 0x03, 0x02, 0x1A]: "sha1",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04]: "sha224",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]: "sha256",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02]: "sha384",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03]: "sha512",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08]: "sha3-256",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09]: "sha3-384",
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x0A]: "sha3-512",
    ]

    static func hexByte(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

enum DER {
    /// The element at `offset` and the offset after it; nil when the
    /// bytes are not a whole definite-length element.
    static func element(_ bytes: ArraySlice<UInt8>, at offset: Int) -> (PKCS7.Element, Int)? {
        guard offset + 2 <= bytes.endIndex else { return nil }
        let tag = bytes[offset]
        var length = Int(bytes[offset + 1])
        var start = offset + 2
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count >= 1, count <= 4, start + count <= bytes.endIndex else { return nil }
            length = bytes[start..<(start + count)].reduce(0) { $0 << 8 | Int($1) }
            start += count
        }
        guard length <= bytes.endIndex - start else { return nil }
        return (PKCS7.Element(tag: tag, content: bytes[start..<(start + length)]), start + length)
    }
}
