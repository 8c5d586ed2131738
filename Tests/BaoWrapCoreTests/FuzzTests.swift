import Glibc
import Testing
@testable import BaoWrapCore

/// Property tests over thousands of generated inputs per run, from fixed
/// seeds so a failure replays: the parsers that see untrusted text (server
/// bodies, environment values, URLs) must answer every input with a value or
/// a typed error, never a crash, and what they accept must be well-formed.
@Suite struct FuzzTests {
    /// BW_FUZZ_ROUNDS raises the count for a longer local run.
    static let rounds = getenv("BW_FUZZ_ROUNDS").flatMap { Int(String(cString: $0)) } ?? 4000

    // MARK: JSON

    /// Walks everything a parsed document offers, as the client would.
    func exercise(_ doc: JSONDocument, arena: SecretArena) throws {
        for i in 0..<doc.tape.count {
            _ = doc.string(i)
            _ = doc.int(i)
            _ = doc.bool(i)
            _ = doc.strings(i)
            for m in doc.members(i) {
                _ = doc.stringEquals(m.key, "data")
                _ = doc.member(i, "errors")
            }
            _ = doc.elements(i)
            let s = try doc.secret(i, in: arena)
            // Unescaping and compacting never grow a value.
            let t = doc.tape[i]
            #expect(s.count <= max(Int(t.end - t.start), 1))
        }
    }

    func fuzzJSON(_ input: [UInt8], arena: SecretArena) throws {
        try input.withUnsafeBytes { b in
            guard let doc = try? JSONDocument(parsing: b) else { return }
            try exercise(doc, arena: arena)
        }
    }

    @Test func json_randomBytes() throws {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        let arena = SecretArena()
        defer { arena.wipeAll() }
        for _ in 0..<Self.rounds { try fuzzJSON(rng.bytes(upTo: 64), arena: arena) }
    }

    @Test func json_grammarShapedNoise() throws {
        var rng = SeededGenerator(seed: 0x5EED_0002)
        let pieces = ["{", "}", "[", "]", "\"", "\"k\"", ":", ",", " ", "\n", "\\", "\\u", "\\ud83d", "\\ude00", "\\n",
                      "0", "-", "1", ".", "e", "E", "+", "true", "false", "null", "\u{1}", "\u{FF}", "é", "😀"]
        let arena = SecretArena()
        defer { arena.wipeAll() }
        for _ in 0..<Self.rounds { try fuzzJSON(Array(rng.text(from: pieces, upTo: 40).utf8), arena: arena) }
    }

    /// Random well-formed documents, some cut or flipped: the generator
    /// reaches the success paths as often as the failure ones.
    @Test func json_generatedDocuments() throws {
        var rng = SeededGenerator(seed: 0x5EED_000A)
        let arena = SecretArena()
        defer { arena.wipeAll() }
        var parsed = 0
        for round in 0..<Self.rounds {
            var doc = Array(Self.jsonValue(&rng, depth: 0).utf8)
            if round % 2 == 1 && !doc.isEmpty { doc[Int.random(in: 0..<doc.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            try fuzzJSON(doc, arena: arena)
            if doc.withUnsafeBytes({ (try? JSONDocument(parsing: $0)) != nil }) { parsed += 1 }
            if round % 500 == 0 { arena.wipeAll() }
        }
        #expect(parsed > Self.rounds / 2)
    }

    static func jsonValue(_ rng: inout SeededGenerator, depth: Int) -> String {
        let strings = ["\"\"", "\"a\"", "\"\\u00e9\\ud83d\\ude00\"", "\"\\n\\t\\\"\\\\\"", "\"ü😀\"", "\"\\ud800\""]
        let scalars = ["0", "-1", "1.5e-3", "12345678901234567890", "true", "false", "null"] + strings
        switch depth > 6 ? 2 : Int.random(in: 0..<4, using: &rng) {
        case 0:
            let n = Int.random(in: 0...4, using: &rng)
            return "{" + (0..<n).map { _ in strings.randomElement(using: &rng)! + ":" + jsonValue(&rng, depth: depth + 1) }
                .joined(separator: ",") + "}"
        case 1:
            let n = Int.random(in: 0...4, using: &rng)
            return "[ " + (0..<n).map { _ in jsonValue(&rng, depth: depth + 1) }.joined(separator: " ,\n") + "]"
        default:
            return scalars.randomElement(using: &rng)!
        }
    }

    @Test func json_mutatedOpenBaoResponses() throws {
        var rng = SeededGenerator(seed: 0x5EED_0003)
        let seeds = ["login_kubernetes.json", "read_kv2_types.json", "read_kv2_escapes.json", "read_kv2_deleted_404.json",
                     "mounts_kv2.json", "read_forbidden_403.json"].map(fixture)
        let arena = SecretArena()
        defer { arena.wipeAll() }
        for round in 0..<Self.rounds {
            var doc = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !doc.isEmpty {
                let at = Int.random(in: 0..<doc.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: doc[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: doc.remove(at: at)
                case 2: doc.insert(Array("{}[]\",:\\".utf8).randomElement(using: &rng)!, at: at)
                default: doc = Array(doc[..<at])
                }
            }
            try fuzzJSON(doc, arena: arena)
            if round % 500 == 0 { arena.wipeAll() }
        }
    }

    // MARK: references

    /// A reference assembled from mostly valid parts, some of them wrong.
    static func refText(_ rng: inout SeededGenerator) -> String {
        let prefixes = ["", "", "", "bao:", "vault:", "bao:bao:", "BAO:"]
        let segments = ["secret", "kv1", "app", "data", "db", "a-b_c.d", "ü", "", ".", "..", "x y", "%2f", "?", "\\", "\u{7f}"]
        let keys = ["password", "k", "key with space", "ключ", "", "\u{1}", "a=b"]
        let versions = ["", "", "#1", "#42", "#0", "#-1", "#x", "#", "#1#2", "#99999999999999999999"]
        let n = Int.random(in: 1...4, using: &rng)
        let path = (0..<n).map { i in i < 2 || Bool.random(using: &rng) ? segments[Int.random(in: 0..<6, using: &rng)]
                                                                        : segments.randomElement(using: &rng)! }
        let key = Int.random(in: 0..<4, using: &rng) > 0 ? "#" + keys.randomElement(using: &rng)! : ""
        return prefixes.randomElement(using: &rng)! + path.joined(separator: "/") + key + versions.randomElement(using: &rng)!
    }

    @Test func secretRef_neverCrashes_andWhatItAcceptsIsWellFormed() throws {
        var rng = SeededGenerator(seed: 0x5EED_0004)
        var accepted = 0
        for round in 0..<Self.rounds {
            let text = round % 4 == 0 ? String(decoding: rng.bytes(upTo: 40), as: UTF8.self) : Self.refText(&rng)
            guard let ref = try? SecretRef.parse(text) else { continue }
            accepted += 1
            let segments = ref.location.split(separator: "/", omittingEmptySubsequences: false)
            #expect(segments.count >= 2 && segments.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }, "\(text)")
            #expect(SecretRef.pathProblem(ref.location) == nil, "\(text)")
            #expect(!ref.key.isEmpty && !ref.key.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }, "\(text)")
            #expect(ref.version.map { $0 > 0 } ?? true, "\(text)")
            #expect(try SecretRef.parse(ref.description) == ref, "\(text)")
        }
        #expect(accepted > Self.rounds / 10)
    }

    @Test func pathBinding_namesAreAlwaysValidWithAValidPrefix() {
        var rng = SeededGenerator(seed: 0x5EED_0005)
        for _ in 0..<Self.rounds {
            let key = String(decoding: rng.bytes(upTo: 16), as: UTF8.self)
            let name = PathBinding(prefix: "P_", location: "secret/x").variableName(forKey: key)
            #expect(EnvName.isValid(name), "\(key)")
        }
    }

    // MARK: URLs

    static func urlText(_ rng: inout SeededGenerator) -> String {
        let schemes = ["https://", "https://", "http://", "HTTPS://", "ftp://", "https:/", "", "https:"]
        let hosts = ["openbao.openbao.svc", "127.0.0.1", "[::1]", "[fe80::1]", "", "a b", "[::1", "u@h", "ü.test", "[]"]
        let ports = ["", ":8200", ":443", ":1", ":65535", ":0", ":65536", ":", ":x", ":-1", ":99999999999999999999"]
        let prefixes = ["", "", "/openbao", "/a/b/", "/", "//", "?q=1", "#f", "/x y"]
        // Half the parts from the valid front of each list, so both outcomes are common.
        return [schemes, hosts, ports, prefixes].map { list in
            Bool.random(using: &rng) ? list[Int.random(in: 0..<3, using: &rng)] : list.randomElement(using: &rng)!
        }.joined()
    }

    @Test func endpoint_neverCrashes_andWhatItAcceptsRoundTrips() throws {
        var rng = SeededGenerator(seed: 0x5EED_0006)
        var accepted = 0
        for round in 0..<Self.rounds {
            let text = round % 4 == 0 ? String(decoding: rng.bytes(upTo: 40), as: UTF8.self) : Self.urlText(&rng)
            guard let e = try? Endpoint.parse(text, option: "--addr") else { continue }
            accepted += 1
            #expect((1...65535).contains(e.port), "\(text)")
            #expect(!e.host.isEmpty, "\(text)")
            #expect(e.pathPrefix.isEmpty || (e.pathPrefix.hasPrefix("/") && !e.pathPrefix.hasSuffix("/")), "\(text)")
            #expect(try Endpoint.parse(e.description, option: "--addr") == e, "\(text)")
        }
        #expect(accepted > Self.rounds / 10)
    }

    @Test func urlPath_escapeIsPlainASCII() {
        var rng = SeededGenerator(seed: 0x5EED_0007)
        for _ in 0..<Self.rounds {
            let escaped = URLPath.escape(String(decoding: rng.bytes(upTo: 32), as: UTF8.self))
            #expect(escaped.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
        }
    }

    // MARK: durations

    @Test func duration_neverCrashes() {
        var rng = SeededGenerator(seed: 0x5EED_0008)
        let pieces = ["1", "0", ".", "5", "ns", "us", "µs", "ms", "s", "m", "h", "-", "e", "9999999999"]
        for round in 0..<Self.rounds {
            let text = round % 4 == 0 ? String(decoding: rng.bytes(upTo: 16), as: UTF8.self) : rng.text(from: pieces, upTo: 8)
            if let d = DurationText.parse(text) { #expect(d >= .zero, "\(text)") }
        }
    }
}
