import Glibc

/// The ServiceAccount JWT: read from its file into locked memory before
/// each login, checked for shape, and its claims decoded (no signature
/// check: OpenBao and the TokenReview API do that) so an expired token or a
/// wrong audience is reported before any network call.
public final class JWT {
    /// The compact serialisation, in locked memory.
    let token: LockedBuffer
    public let claims: Claims

    public struct Claims: Sendable, Equatable {
        public var issuer: String?
        public var subject: String?
        public var audiences: [String] = []
        public var expiresAt: Int?
        public var notBefore: Int?
    }

    static let sizeLimit = 64 * 1024

    public static func read(path: String, hardened: Bool) throws(BaoWrapError) -> JWT {
        if hardened && FileCheck.isWorldWritable(path) {
            throw BaoWrapError(.config, "JWT file \(path) is world-writable; anyone could replace the identity", hint: "chmod o-w \(path)")
        }
        let buf = try LockedBuffer(capacity: 4096, limit: sizeLimit)
        try readFile(path, limit: sizeLimit) { (chunk) throws(BaoWrapError) in
            _ = try buf.append(chunk)
        }
        return try JWT(buf, source: path)
    }

    init(_ raw: LockedBuffer, source: String) throws(BaoWrapError) {
        // Trailing newlines are common when the token was written by hand.
        let count = raw.withUnsafeBytes { b in
            var n = b.count
            while n > 0 && (b[n - 1] == 0x0a || b[n - 1] == 0x0d || b[n - 1] == 0x20) { n -= 1 }
            return n
        }
        let tok = try LockedBuffer(capacity: max(count, 1), limit: JWT.sizeLimit)
        token = tok
        try raw.withUnsafeBytes { (b) throws(BaoWrapError) in _ = try tok.append(UnsafeRawBufferPointer(rebasing: b[0..<count])) }
        raw.wipe()
        func bad(_ why: String) -> BaoWrapError {
            BaoWrapError(.config, "JWT in \(source) is unusable: \(why)",
                         hint: "the file must hold one compact JWT (header.payload.signature), such as a projected ServiceAccount token")
        }
        let (dots, allowed) = tok.withUnsafeBytes { b -> (Int, Bool) in
            var dots = 0
            var ok = true
            for c in b {
                if c == UInt8(ascii: ".") { dots += 1; continue }
                let isB64 = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f
                if !isB64 { ok = false }
            }
            return (dots, ok)
        }
        guard count > 0 else { throw bad("the file is empty") }
        guard allowed else { throw bad("it contains characters outside base64url") }
        guard dots == 2 else { throw bad("it has \(dots + 1) parts instead of 3") }
        let payload = try tok.withUnsafeBytes { (b) throws(BaoWrapError) -> LockedBuffer in
            let first = b.firstIndex(of: UInt8(ascii: "."))!
            let second = b[(first + 1)...].firstIndex(of: UInt8(ascii: "."))!
            guard let decoded = try Base64URL.decode(UnsafeRawBufferPointer(rebasing: b[(first + 1)..<second])) else {
                throw bad("its payload is not base64url")
            }
            return decoded
        }
        defer { payload.wipe() }
        do {
            claims = try payload.withUnsafeBytes { (b) throws(JSONDocument.Error) -> Claims in
                let doc = try JSONDocument(parsing: b)
                guard doc.kind(doc.root) == .object else { throw JSONDocument.Error(offset: 0, reason: "not an object") }
                var c = Claims()
                c.issuer = doc.member(doc.root, "iss").flatMap(doc.string)
                c.subject = doc.member(doc.root, "sub").flatMap(doc.string)
                if let aud = doc.member(doc.root, "aud") {
                    c.audiences = doc.kind(aud) == .array ? doc.strings(aud) : doc.string(aud).map { [$0] } ?? []
                }
                c.expiresAt = doc.member(doc.root, "exp").flatMap(doc.int)
                c.notBefore = doc.member(doc.root, "nbf").flatMap(doc.int)
                return c
            }
        } catch {
            throw bad("its claims are not a JSON object (\(error.reason))")
        }
    }

    /// A claim that will make the login fail, found locally.
    public struct Problem: Sendable, Equatable {
        /// exp, nbf, iss, aud or sub.
        public let claim: String
        /// Names the claim and its value; never the token.
        public let message: String
    }

    /// Problems with the claims, in claim order: exp, nbf, iss, aud, sub.
    public func problems(expected: ExpectedClaims, now: Int? = nil) -> [Problem] {
        let now = now ?? Int(time(nil))
        var out: [Problem] = []
        // A little leeway for clock skew between node and API server.
        let skew = 30
        if let exp = claims.expiresAt, exp + skew < now {
            out.append(Problem(claim: "exp", message: "the JWT expired \(now - exp)s ago (exp claim)"))
        }
        if let nbf = claims.notBefore, nbf - skew > now {
            out.append(Problem(claim: "nbf", message: "the JWT is not valid for another \(nbf - now)s (nbf claim)"))
        }
        func mismatch(_ claim: String, _ actual: String?, _ wanted: String) -> Problem {
            Problem(claim: claim, message: actual.map { "the JWT's \(claim) claim is \"\($0)\", expected \"\(wanted)\"" }
                        ?? "the JWT has no \(claim) claim, expected \"\(wanted)\"")
        }
        if let iss = expected.issuer, claims.issuer != iss { out.append(mismatch("iss", claims.issuer, iss)) }
        if let aud = expected.audience, !claims.audiences.contains(aud) {
            out.append(Problem(claim: "aud", message: claims.audiences.isEmpty ? "the JWT has no aud claim, expected \"\(aud)\""
                                : "the JWT's aud claim is [\(claims.audiences.joined(separator: ", "))], expected it to contain \"\(aud)\""))
        }
        if let sub = expected.subject, claims.subject != sub { out.append(mismatch("sub", claims.subject, sub)) }
        return out
    }

    public func wipe() { token.wipe() }
}

enum Base64URL {
    /// The unpadded base64url form of `bytes`, one character at a time to
    /// `emit` (a locked buffer when the bytes are a secret, so no clear or
    /// encoded copy exists elsewhere).
    static func encode(_ bytes: UnsafeRawBufferPointer, _ emit: (UInt8) throws(BaoWrapError) -> Void) throws(BaoWrapError) {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for k in 0...n { try emit(alphabet[Int((v >> UInt32(18 - 6 * k)) & 63)]) }
            i += 3
        }
    }

    /// Decodes unpadded (or padded) base64url into a locked buffer; nil when
    /// the text is not base64url.
    static func decode(_ text: UnsafeRawBufferPointer) throws(BaoWrapError) -> LockedBuffer? {
        let out = try LockedBuffer(capacity: text.count)
        var acc: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt32
            switch c {
            case 0x41...0x5a: v = UInt32(c - 0x41)
            case 0x61...0x7a: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case 0x2d, 0x2b: v = 62
            case 0x5f, 0x2f: v = 63
            case 0x3d: continue
            default: return nil
            }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                try out.append(byte: UInt8((acc >> UInt32(bits)) & 0xff))
            }
        }
        return out
    }
}
