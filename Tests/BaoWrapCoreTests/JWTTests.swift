import Foundation
import Testing
@testable import BaoWrapCore

private func b64url(_ s: String) -> String {
    Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}

private let signature = "c2lnbmF0dXJlLWNhbmFyeS0xMjM0NTY3ODkw"

private func token(_ payload: String) -> String {
    b64url(#"{"alg":"RS256","kid":"k"}"#) + "." + b64url(payload) + "." + signature
}

private func jwt(_ text: String) throws(BaoWrapError) -> JWT {
    let buf = try LockedBuffer()
    try buf.append(text)
    return try JWT(buf, source: "/token")
}

private let now = 1_800_000_000

@Test func claims_areDecoded() throws {
    let j = try jwt(token(#"{"iss":"https://k8s","sub":"system:serviceaccount:default:app","aud":["openbao","x"],"exp":1800000600,"nbf":1799999000}"#))
    #expect(j.claims == JWT.Claims(issuer: "https://k8s", subject: "system:serviceaccount:default:app",
                                   audiences: ["openbao", "x"], expiresAt: 1_800_000_600, notBefore: 1_799_999_000))
    #expect(j.problems(expected: ExpectedClaims(issuer: "https://k8s", audience: "x", subject: "system:serviceaccount:default:app"),
                       now: now).isEmpty)
}

@Test func audience_mayBeASingleString() throws {
    #expect(try jwt(token(#"{"aud":"openbao"}"#)).claims.audiences == ["openbao"])
}

@Test func trailingNewline_isIgnored() throws {
    #expect(try jwt(token(#"{"sub":"a"}"#) + "\n").claims.subject == "a")
}

@Test func expiredAndNotYetValid_nameTheClaim() throws {
    let j = try jwt(token(#"{"exp":1799999000,"nbf":1800000600}"#))
    let p = j.problems(expected: ExpectedClaims(), now: now)
    #expect(p.map(\.claim) == ["exp", "nbf"])
    #expect(p[0].message == "the JWT expired 1000s ago (exp claim)")
    #expect(p[1].message == "the JWT is not valid for another 600s (nbf claim)")
}

@Test func clockSkew_ofHalfAMinuteIsTolerated() throws {
    let j = try jwt(token(#"{"exp":1799999980,"nbf":1800000020}"#))
    #expect(j.problems(expected: ExpectedClaims(), now: now).isEmpty)
}

@Test func expectedClaims_mismatchedOrMissing() throws {
    let want = ExpectedClaims(issuer: "https://issuer", audience: "vault", subject: "sa")
    let wrong = try jwt(token(#"{"iss":"https://other","aud":["openbao"],"sub":"someone"}"#)).problems(expected: want, now: now)
    #expect(wrong.map(\.claim) == ["iss", "aud", "sub"])
    #expect(wrong.map(\.message) == [
        #"the JWT's iss claim is "https://other", expected "https://issuer""#,
        #"the JWT's aud claim is [openbao], expected it to contain "vault""#,
        #"the JWT's sub claim is "someone", expected "sa""#,
    ])
    let missing = try jwt(token("{}")).problems(expected: want, now: now)
    #expect(missing.map(\.message) == [
        #"the JWT has no iss claim, expected "https://issuer""#,
        #"the JWT has no aud claim, expected "vault""#,
        #"the JWT has no sub claim, expected "sa""#,
    ])
}

@Test(arguments: [
    ("", "the file is empty"),
    ("a.b", "it has 2 parts instead of 3"),
    ("a.b.c.d", "it has 4 parts instead of 3"),
    ("a b.c.d", "it contains characters outside base64url"),
    ("eyJ9.!!!.c", "it contains characters outside base64url"),
    ("eyJ9.bm90IGpzb24.c2lnbmF0dXJlLWNhbmFyeS0xMjM0NTY3ODkw", "its claims are not a JSON object"),
])
func malformed_isAConfigErrorThatNeverShowsTheToken(text: String, why: String) {
    do {
        _ = try jwt(text)
        Issue.record("accepted \(text)")
    } catch {
        #expect(error.errorClass == .config)
        #expect(error.rendered.contains("JWT in /token is unusable: \(why)"))
        #expect(!error.rendered.contains(signature))
        if text.count > 8 { #expect(!error.rendered.contains(text)) }
    }
}

@Test func read_refusesWorldWritableFileOnlyWhenHardened() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jwt-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("token")
    try token(#"{"sub":"a"}"#).write(to: file, atomically: false, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: file.path)
    #expect(throws: BaoWrapError(.config, "")) { try JWT.read(path: file.path, hardened: true) }
    #expect(try JWT.read(path: file.path, hardened: false).claims.subject == "a")
    try FileManager.default.setAttributes([.posixPermissions: 0o440], ofItemAtPath: file.path)
    #expect(try JWT.read(path: file.path, hardened: true).claims.subject == "a")
}

@Test func read_missingFileIsAConfigError() {
    #expect(throws: BaoWrapError(.config, "")) { try JWT.read(path: "/nonexistent/token", hardened: true) }
}

@Test func wipe_zeroesTheToken() throws {
    let j = try jwt(token(#"{"sub":"a"}"#))
    let n = j.token.count
    j.wipe()
    #expect(j.token.count == 0)
    #expect(UnsafeRawBufferPointer(start: j.token.region.base, count: n).allSatisfy { $0 == 0 })
}
