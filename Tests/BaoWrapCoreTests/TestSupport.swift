import Glibc
import Testing
@testable import BaoWrapCore

/// An environment block built from "NAME=value" byte strings, alive as long
/// as this object: `EnvironmentEntry` points into it as into the real environ.
final class TestEnvironment {
    private var storage: [UnsafeMutablePointer<CChar>] = []
    private(set) var entries: [EnvironmentEntry] = []

    init(_ pairs: [[UInt8]]) {
        for bytes in pairs {
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, b) in bytes.enumerated() { p[i] = CChar(bitPattern: b) }
            p[bytes.count] = 0
            storage.append(p)
            entries.append(EnvironmentEntry(UnsafePointer(p)))
        }
    }

    convenience init(_ pairs: [String]) { self.init(pairs.map { Array($0.utf8) }) }

    deinit { storage.forEach { $0.deallocate() } }
}

/// Config.load with flags as the parser records them and an environment.
func loadConfig(_ flags: [OptionKey: [String]] = [:], env: [String] = []) throws(BaoWrapError) -> Config {
    let e = TestEnvironment(env)
    defer { withExtendedLifetime(e) {} }
    return try Config.load(flags: flags, environment: e.entries)
}

/// The error Config.load throws, or nil (and a test failure) when it loads.
func configError(_ flags: [OptionKey: [String]] = [:], env: [String] = [],
                 sourceLocation: SourceLocation = #_sourceLocation) -> BaoWrapError? {
    do {
        _ = try loadConfig(flags, env: env)
        Issue.record("expected a config error for flags \(flags), env \(env)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The flags and variables a run with one secret needs, to which a test
/// adds the one thing it is about.
let minimalFlags: [OptionKey: [String]] = [
    .addr: ["https://openbao.example:8200"], .role: ["app"], .secret: ["DB=secret/app/db#password"],
]

/// A whole file's bytes, or nil when it cannot be opened.
func readBytes(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// A recorded OpenBao response from Tests/BaoWrapCoreTests/Fixtures.
func fixture(_ name: String) -> [UInt8] {
    let dir = String(#filePath.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropLast()
        .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/"))
    guard let bytes = readBytes(dir + "/Fixtures/" + name) else { fatalError("fixture \(name) missing") }
    return bytes
}

/// Parses `bytes` and hands the document to `body` while the bytes are alive.
func withDocument<R>(_ bytes: [UInt8], _ body: (JSONDocument) throws -> R) throws -> R {
    try bytes.withUnsafeBytes { b in try body(try JSONDocument(parsing: b)) }
}

/// A secret's bytes, copied out for comparison (tests only).
func bytes(of s: Secret) -> [UInt8] { s.withUnsafeBytes { Array($0) } }

/// A response as the HTTP engine hands it to the client.
func response(_ status: Int, _ body: [UInt8], contentType: String? = "application/json") throws -> HTTPResponse {
    let buffer = try LockedBuffer(capacity: max(body.count, 1))
    _ = try body.withUnsafeBytes { try buffer.append($0) }
    return HTTPResponse(status: status, body: buffer, contentType: contentType, location: nil)
}

/// SplitMix64: a deterministic generator, so every fuzz run sees the same
/// inputs and a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(upTo max: Int) -> [UInt8] {
        (0..<Int.random(in: 0...max, using: &self)).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// A string of pieces drawn from `alphabet`, which biases the input
    /// towards the grammar under test.
    mutating func text(from alphabet: [String], upTo max: Int) -> String {
        (0..<Int.random(in: 0...max, using: &self)).map { _ in alphabet.randomElement(using: &self)! }.joined()
    }
}
