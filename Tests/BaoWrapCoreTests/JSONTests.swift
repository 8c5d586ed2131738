import Testing
@testable import BaoWrapCore

/// The JSON reader against recorded OpenBao 2.7.2 answers (Fixtures/) and
/// hand-written edge cases.
@Suite struct JSONFixtureTests {
    @Test func login_tokenLeaseAndPolicies() throws {
        try withDocument(fixture("login_kubernetes.json")) { doc in
            let tok = try #require(doc.path("auth", "client_token"))
            #expect(doc.stringEquals(tok, "s.FixtureTokenNotReal0000001"))
            #expect(doc.path("auth", "lease_duration").flatMap(doc.int) == 600)
            #expect(doc.path("auth", "renewable").flatMap(doc.bool) == true)
            #expect(doc.path("auth", "policies").map(doc.strings) == ["app-read", "default"])
            #expect(doc.path("data").map(doc.kind) == .null)
            #expect(doc.path("auth", "metadata", "service_account_name").flatMap(doc.string) == "app")
        }
    }

    @Test(arguments: [("mounts_kv2.json", "secret/", "2"), ("mounts_kv1.json", "kv1/", "1")])
    func mounts_pathTypeAndVersion(file: String, path: String, version: String) throws {
        try withDocument(fixture(file)) { doc in
            #expect(doc.path("data", "path").flatMap(doc.string) == path)
            #expect(doc.path("data", "type").flatMap(doc.string) == "kv")
            #expect(doc.path("data", "options", "version").flatMap(doc.string) == version)
        }
    }

    @Test func kv2Types_nonStringValuesRenderAsCompactJSON() throws {
        let arena = SecretArena()
        defer { arena.wipeAll() }
        try withDocument(fixture("read_kv2_types.json")) { doc in
            let data = try #require(doc.path("data", "data"))
            #expect(doc.path("data", "metadata", "version").flatMap(doc.int) == 1)
            let expected = ["arr": "[1,\"x\"]", "bool": "true", "float": "1.5", "null": "null", "num": "42", "obj": "{\"a\":1}"]
            #expect(doc.members(data).compactMap { doc.string($0.key) } == expected.keys.sorted())
            for (key, text) in expected {
                let v = try #require(doc.member(data, key))
                #expect(bytes(of: try doc.secret(v, in: arena)) == Array(text.utf8), "\(key)")
            }
        }
    }

    @Test func kv2Escapes_stringsUnescapeExactly_objectsKeepTheirEscapes() throws {
        let arena = SecretArena()
        defer { arena.wipeAll() }
        try withDocument(fixture("read_kv2_escapes.json")) { doc in
            let data = try #require(doc.path("data", "data"))
            func value(_ key: String) throws -> [UInt8] { bytes(of: try doc.secret(try #require(doc.member(data, key)), in: arena)) }
            // Go escapes <, > and & as \u003c, \u003e, \u0026.
            #expect(try value("html") == Array("<a href=\"x\">&amp;</a>".utf8))
            #expect(try value("ctl") == [0x01, 0x1f, 0x09, 0x0d, 0x0a])
            #expect(try value("quote") == Array("\"\\/".utf8))
            #expect(try value("uni") == Array("\u{2028}\u{2029} é 😀".utf8))
            #expect(try value("empty") == [])
            #expect(try value("nested") == Array("{\"k\":[\"v\",{\"x\":null}],\"s\":\"a\\\"b\"}".utf8))
        }
    }

    @Test func kv2Multiline_newlinesAndUnicodePreserved() throws {
        let arena = SecretArena()
        defer { arena.wipeAll() }
        try withDocument(fixture("read_kv2_multiline.json")) { doc in
            let v = try #require(doc.path("data", "data", "value"))
            let got = bytes(of: try doc.secret(v, in: arena))
            #expect(got.starts(with: Array("line1\nline2=x\n€ü😀 ".utf8)))
            #expect(got.count == Array("line1\nline2=x\n€ü😀 ".utf8).count + 8)
        }
    }

    @Test func kv1_dataIsTheSecret() throws {
        try withDocument(fixture("read_kv1.json")) { doc in
            let data = try #require(doc.path("data"))
            #expect(doc.members(data).count == 1)
            #expect(doc.member(data, "token").flatMap(doc.string)?.hasPrefix("kv1-") == true)
            #expect(doc.path("lease_duration").flatMap(doc.int) == 2_764_800)
        }
    }

    @Test(arguments: [("read_kv2_deleted_404.json", false, true), ("read_kv2_destroyed_404.json", true, false)])
    func deletedAndDestroyed_404sCarryMetadata(file: String, destroyed: Bool, hasDeletionTime: Bool) throws {
        try withDocument(fixture(file)) { doc in
            #expect(doc.path("data", "data").map(doc.kind) == .null)
            let meta = try #require(doc.path("data", "metadata"))
            #expect(doc.member(meta, "destroyed").flatMap(doc.bool) == destroyed)
            #expect(doc.member(meta, "deletion_time").flatMap(doc.string).map { !$0.isEmpty } == hasDeletionTime)
        }
    }

    @Test(arguments: [
        ("read_kv2_missing_404.json", 404, [String]()),
        ("read_forbidden_403.json", 403, ["permission denied"]),
        ("login_denied_403.json", 403, ["service account name not authorized"]),
        ("login_jwt_wrong_aud_400.json", 400,
         ["error validating token: invalid audience (aud) claim: audience claim does not match any expected audience"]),
        ("rate_limited_429.json", 429, ["request path \"secret/data/app/db\": rate limit quota exceeded"]),
    ])
    func errorBodies_becomeOneLineErrors(file: String, status: Int, errors: [String]) throws {
        let f = APIFailure(try response(status, fixture(file)))
        #expect(f.errors == errors)
        #expect(f.foreignBody == nil)
        #expect(f.summary == "HTTP \(status)" + (errors.isEmpty ? "" : ": " + errors.joined(separator: "; ")))
    }
}

@Suite struct JSONGrammarTests {
    func parses(_ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { b in (try? JSONDocument(parsing: b)) != nil }
    }

    func unescaped(_ jsonString: String) throws -> [UInt8] {
        let arena = SecretArena()
        defer { arena.wipeAll() }
        return try withDocument(Array(jsonString.utf8)) { doc in bytes(of: try doc.secret(doc.root, in: arena)) }
    }

    @Test(arguments: [
        ("\"\\ud83d\\ude00\"", [0xF0, 0x9F, 0x98, 0x80]),   // surrogate pair
        ("\"\\uD83D\\uDE00\"", [0xF0, 0x9F, 0x98, 0x80]),   // upper-case hex
        ("\"\\ud83d\"", [0xEF, 0xBF, 0xBD]),                // lone high surrogate → U+FFFD
        ("\"\\ude00\"", [0xEF, 0xBF, 0xBD]),                // lone low surrogate
        ("\"\\ud83dx\"", [0xEF, 0xBF, 0xBD, 0x78]),
        ("\"\\ud83d\\u0041\"", [0xEF, 0xBF, 0xBD, 0x41]),  // high + non-low: both kept apart
        ("\"\\ud83d\\ud83d\\ude00\"", [0xEF, 0xBF, 0xBD, 0xF0, 0x9F, 0x98, 0x80]),
        ("\"\\u0000\"", [0x00]),
        ("\"\\u00e9\\u20ac\"", [0xC3, 0xA9, 0xE2, 0x82, 0xAC]),
        ("\"\\b\\f\\n\\r\\t\\\"\\\\\\/\"", [0x08, 0x0C, 0x0A, 0x0D, 0x09, 0x22, 0x5C, 0x2F]),
        ("\"plain\"", Array("plain".utf8)),
        ("\"\"", []),
    ] as [(String, [UInt8])])
    func string_escapes(json: String, expected: [UInt8]) throws {
        #expect(try unescaped(json) == expected)
    }

    @Test func string_bytesThatAreNotUTF8_passThroughUntouched() throws {
        let raw: [UInt8] = [0x22, 0xFF, 0xC3, 0x28, 0x80, 0x22]
        let arena = SecretArena()
        defer { arena.wipeAll() }
        let got = try withDocument(raw) { doc in bytes(of: try doc.secret(doc.root, in: arena)) }
        #expect(got == [0xFF, 0xC3, 0x28, 0x80])
    }

    @Test(arguments: ["0", "-0", "1.5", "-1.5e-3", "1e10", "1E+2", "123456789012345678901234567890", "[1,2.0,-3e0]"])
    func number_valid(_ text: String) { #expect(parses(text)) }

    @Test(arguments: ["01", "1.", ".5", "-", "+1", "1e", "1e+", "0x1", "NaN", "Infinity", "-Infinity", "1.5.5", "--1"])
    func number_invalid(_ text: String) { #expect(!parses(text)) }

    @Test(arguments: [("42", 42), ("-7", -7), ("0", 0), ("1.5", nil), ("1e3", nil),
                      ("9223372036854775807", Int.max), ("9223372036854775808", nil), ("99999999999999999999", nil)] as [(String, Int?)])
    func int_readsOnlyIntegersThatFit(text: String, value: Int?) throws {
        #expect(try withDocument(Array(text.utf8)) { $0.int($0.root) } == value)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":}", "[1 2]", "{} x", "\"abc",
        "\"a\u{1}b\"", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\", "tru", "nul", "falsey", "'a'", "[\"a\"]]",
    ])
    func malformed_isAnErrorNotACrash(_ text: String) { #expect(!parses(text)) }

    @Test func nesting_isLimitedTo64() {
        let depth = JSONDocument.maxDepth
        #expect(parses(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)))
        #expect(!parses(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)))
        #expect(!parses(String(repeating: "{\"a\":", count: depth + 1) + "1" + String(repeating: "}", count: depth + 1)))
        // Far deeper than the limit: refused without recursing into it.
        #expect(!parses(String(repeating: "[", count: 100_000)))
    }

    @Test func member_lastDuplicateWins_andEscapedKeysMatch() throws {
        try withDocument(Array("{\"k\":1,\"p\\u0061ss\":2,\"k\":3}".utf8)) { doc in
            #expect(doc.member(doc.root, "k").flatMap(doc.int) == 3)
            #expect(doc.member(doc.root, "pass").flatMap(doc.int) == 2)
            #expect(doc.member(doc.root, "pas") == nil)
            #expect(doc.member(doc.root, "passs") == nil)
        }
    }

    @Test func navigation_onTheWrongKind_isEmptyNotACrash() throws {
        try withDocument(Array("[\"a\",{\"b\":[]}]".utf8)) { doc in
            #expect(doc.members(doc.root).isEmpty)
            #expect(doc.member(doc.root, "b") == nil)
            #expect(doc.elements(doc.root).count == 2)
            #expect(doc.int(doc.root) == nil && doc.string(doc.root) == nil && doc.bool(doc.root) == nil)
            #expect(doc.path("x") == nil)
        }
    }

    @Test func compact_dropsOnlyInsignificantWhitespace() throws {
        let arena = SecretArena()
        defer { arena.wipeAll() }
        let text = "{ \"a b\" : [ 1 , \"x \\\" y\" ,\n\t{ } ] , \"c\":null }"
        let got = try withDocument(Array(text.utf8)) { doc in bytes(of: try doc.secret(doc.root, in: arena)) }
        #expect(got == Array("{\"a b\":[1,\"x \\\" y\",{}],\"c\":null}".utf8))
    }

    @Test func largeValue_64KiB_isPreservedExactly() throws {
        let value = (0..<65_536).map { i in UInt8(ascii: "a") + UInt8(i % 26) }
        let doc = Array("{\"data\":{\"data\":{\"value\":\"".utf8) + value + Array("\"}}}".utf8)
        let arena = SecretArena()
        defer { arena.wipeAll() }
        let got = try withDocument(doc) { d in bytes(of: try d.secret(try #require(d.path("data", "data", "value")), in: arena)) }
        #expect(got == value)
    }
}

@Suite struct APIFailureTests {
    static let nginx400 = """
        <html>
        <head><title>400 No required SSL certificate was sent</title></head>
        <body>
        <center><h1>400 Bad Request</h1></center>
        <center>No required SSL certificate was sent</center>
        <hr><center>nginx/1.22.1</center>
        </body>
        </html>
        """

    @Test func htmlPage_isForeign_withItsTitle() throws {
        let f = APIFailure(try response(400, Array(Self.nginx400.utf8), contentType: "text/html"))
        #expect(f.errors.isEmpty)
        #expect(f.title == "400 No required SSL certificate was sent")
        #expect(f.summary == "HTTP 400 with non-JSON body (\(Self.nginx400.utf8.count) bytes, text/html: \"400 No required SSL certificate was sent\")")
    }

    @Test func emptyBody_isForeign() throws {
        let f = APIFailure(try response(502, [], contentType: nil))
        #expect(f.summary == "HTTP 502 with empty body")
    }

    @Test func jsonThatIsNotAnObject_isForeign() throws {
        #expect(APIFailure(try response(500, Array("[1]".utf8))).foreignBody != nil)
        #expect(APIFailure(try response(500, Array("{\"errors\":".utf8))).foreignBody != nil)
    }

    @Test(arguments: [
        ("<TITLE>Upper</TITLE>", "Upper"),
        ("<title>  a\u{1}b\nc  </title>", "a b c"),
        ("<title></title>", nil),
        ("<title>never closed", nil),
        ("no title at all", nil),
        ("<title>" + String(repeating: "x", count: 500) + "</title>", String(repeating: "x", count: 120)),
    ] as [(String, String?)])
    func htmlTitle(html: String, title: String?) {
        #expect(Array(html.utf8).withUnsafeBytes(APIFailure.htmlTitle) == title)
    }

    @Test(arguments: [
        ("1 error occurred:\n\t* permission denied\n\n", "permission denied"),
        ("2 errors occurred:\n\t* a\n\t* b\n\n", "a; b"),
        ("plain message", "plain message"),
        ("line one\nline two", "line one line two"),
    ])
    func flatten_goMultierror(raw: String, flat: String) {
        #expect(APIFailure.flatten(raw) == flat)
    }
}
