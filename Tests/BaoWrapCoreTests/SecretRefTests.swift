import Testing
@testable import BaoWrapCore

@Suite struct SecretRefTests {
    @Test(arguments: [
        ("secret/db#password", "secret/db", "password", nil),
        ("secret/db#password#3", "secret/db", "password", 3),
        ("bao:secret/app/db#password", "secret/app/db", "password", nil),
        ("vault:kv1/app/api#token", "kv1/app/api", "token", nil),
        ("secret/data/app/db#password#12", "secret/data/app/db", "password", 12),
        ("secret/app/db#key with spaces", "secret/app/db", "key with spaces", nil),
        ("secret/app/db#ключ", "secret/app/db", "ключ", nil),
        ("secret/ü/x#k", "secret/ü/x", "k", nil),
        ("team/kv/a/b/c/d#k#1", "team/kv/a/b/c/d", "k", 1),
    ] as [(String, String, String, Int?)])
    func parse_validReference(text: String, location: String, key: String, version: Int?) throws {
        let r = try SecretRef.parse(text)
        #expect(r.location == location)
        #expect(r.key == key)
        #expect(r.version == version)
    }

    @Test(arguments: [
        ("secret", "malformed secret reference"),
        ("secret/db", "malformed secret reference"),
        ("secret/db#k#1#2", "malformed secret reference"),
        ("secret#k", "needs a mount and a path"),
        ("/secret/db#k", "empty path segment"),
        ("secret//db#k", "empty path segment"),
        ("secret/db/#k", "empty path segment"),
        ("secret/../db#k", "contains a . or .. segment"),
        ("secret/./db#k", "contains a . or .. segment"),
        ("secret/d b#k", "whitespace"),
        ("secret/db?version=2#k", "?"),
        ("secret/db%2f#k", "%"),
        ("secret/d\\b#k", "\\"),
        ("secret/d\u{7f}b#k", "control character"),
        ("secret/db#", "has an empty key"),
        ("secret/db#k\u{1}", "control character in its key"),
        ("secret/db#k#0", "bad version \"0\""),
        ("secret/db#k#-1", "bad version \"-1\""),
        ("secret/db#k#+1", "bad version \"+1\""),
        ("secret/db#k#1.5", "bad version \"1.5\""),
        ("secret/db#k#", "bad version \"\""),
        ("secret/db#k#99999999999999999999999", "bad version"),
        ("bao:", "malformed secret reference"),
    ])
    func parse_malformedReference_saysWhy(text: String, why: String) {
        do {
            let r = try SecretRef.parse(text)
            Issue.record("\(text) parsed as \(r)")
        } catch {
            #expect(error.errorClass == .config)
            #expect(error.rendered.includes(why), "\(error.rendered)")
            #expect(error.rendered.includes(text), "the message quotes the reference")
        }
    }

    @Test func parse_prefixTwice_isATypo() {
        #expect(throws: BaoWrapError(.config, "")) { try SecretRef.parse("bao:vault:x/y#k") }
        #expect(throws: BaoWrapError(.config, "")) { try SecretRef.parse("bao:bao:x/y#k") }
    }

    @Test func description_roundTrips() throws {
        for text in ["secret/db#password", "secret/db#password#3", "kv1/a/b#k"] {
            let r = try SecretRef.parse(text)
            #expect(r.description == text)
            #expect(try SecretRef.parse(r.description) == r)
        }
    }

    @Test(arguments: [("secret/data/app", true), ("secret/data/app/db", true), ("secret/data", false),
                      ("secret/app/data", false), ("team/kv/data/app", false)])
    func isV2APIForm(_ location: String, expected: Bool) {
        #expect(SecretRef.isV2APIForm(location) == expected)
    }

    @Test func source_hashesThePathUnlessShown() throws {
        let b = SecretBinding(name: "DB", ref: try SecretRef.parse("secret/app/db#password#2"), origin: .flag)
        #expect(b.source(showPaths: true) == "secret/app/db#password#2")
        let hashed = b.source(showPaths: false)
        #expect(hashed.hasPrefix("sha256:") && hashed.hasSuffix("#password#2"))
        #expect(!hashed.includes("secret/app"))
        #expect(PathBinding(prefix: "P_", location: "secret/app").source(showPaths: true) == "secret/app#*")
    }
}

@Suite struct PathBindingTests {
    @Test(arguments: [
        ("APP_", "password", "APP_PASSWORD"),
        ("APP_", "db-host", "APP_DB_HOST"),
        ("", "api.key", "API_KEY"),
        ("X_", "a b/c:d", "X_A_B_C_D"),
        ("X_", "ünï", "X__N_"),
        ("X_", "😀", "X__"),
        ("", "lower_Mixed9", "LOWER_MIXED9"),
        ("P", "1st", "P1ST"),
    ])
    func variableName_upperCasesAndSanitises(prefix: String, key: String, name: String) {
        let name2 = PathBinding(prefix: prefix, location: "secret/x").variableName(forKey: key)
        #expect(name2 == name)
        #expect(PathBinding.problem(name: name2, key: key, location: "secret/x") == nil)
    }

    @Test(arguments: [("", "1st", "does not make a valid variable name (\"1ST\")"),
                      ("", "", "does not make a valid variable name (\"\")"),
                      ("", "baowrap_addr", "makes a BAOWRAP_* name")])
    func variableName_thatCannotBeUsed_isAProblem(prefix: String, key: String, why: String) throws {
        let name = PathBinding(prefix: prefix, location: "secret/x").variableName(forKey: key)
        let e = try #require(PathBinding.problem(name: name, key: key, location: "secret/x"))
        #expect(e.errorClass == .config)
        #expect(e.rendered.includes(why), "\(e.rendered)")
    }
}

@Suite struct EndpointTests {
    @Test(arguments: [
        ("https://openbao.openbao.svc:8200", Endpoint.Scheme.https, "openbao.openbao.svc", 8200, ""),
        ("https://bao.example", .https, "bao.example", 443, ""),
        ("http://127.0.0.1", .http, "127.0.0.1", 80, ""),
        ("HTTPS://bao:1/", .https, "bao", 1, ""),
        ("https://broker.ns.svc:8443/openbao/", .https, "broker.ns.svc", 8443, "/openbao"),
        ("https://broker:8443/a/b//", .https, "broker", 8443, "/a/b"),
        ("https://[::1]:8200", .https, "[::1]", 8200, ""),
        ("https://[fe80::1]/p", .https, "[fe80::1]", 443, "/p"),
        ("https://[::ffff:10.0.0.1]:8200/a%20b", .https, "[::ffff:10.0.0.1]", 8200, "/a%20b"),
        ("https://bao_1.internal:00443", .https, "bao_1.internal", 443, ""),
    ])
    func parse_validURL(text: String, scheme: Endpoint.Scheme, host: String, port: Int, prefix: String) throws {
        let e = try Endpoint.parse(text, option: "--addr")
        #expect(e.scheme == scheme && e.host == host && e.port == port && e.pathPrefix == prefix)
    }

    @Test(arguments: [
        ("openbao:8200", "no scheme"), ("ftp://x", "scheme must be https"), ("https://", "no host"),
        ("https://:8200", "no host"), ("https://x:0", "bad port"), ("https://x:65536", "bad port"),
        ("https://x:port", "bad port"), ("https://x:", "bad port"), ("https://x?a=1", "query"),
        ("https://u:p@x", "user info"), ("https://x#f", "fragment"), ("https://x y", "spaces"),
        ("https://[::1", "unterminated IPv6"), ("https://[::1]x", "junk after IPv6"), ("https://[]", "no host"),
        ("https://a:b:8200", "host \"a:b\" is not a DNS name"), ("https://ü.test", "is not a DNS name"),
        ("https://[::g]", "is not a DNS name or an IP address"), ("https://x:+80", "bad port \"+80\""),
        ("https://x:0080000", "bad port"), ("https://x/open bao", "spaces"), ("https://x/pre|fix", "only URL characters"),
        ("https://x/ü", "only URL characters"),
    ])
    func parse_badURL_saysWhy(text: String, why: String) {
        do {
            let e = try Endpoint.parse(text, option: "BAO_ADDR")
            Issue.record("\(text) parsed as \(e)")
        } catch {
            #expect(error.errorClass == .config)
            #expect(error.rendered.hasPrefix("BAO_ADDR \"\(text)\" is not a usable URL"))
            #expect(error.rendered.includes(why), "\(error.rendered)")
        }
    }

    @Test(arguments: [
        ("secret/data/app/db", "secret/data/app/db"),
        ("secret/ü x", "secret/%C3%BC%20x"),
        ("a\"b<c>{d}|e^f`g[h]", "a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60g%5Bh%5D"),
        ("a:b@c+d=e;f,g!h$i&j'k(l)m*n~o", "a:b@c+d=e;f,g!h$i&j'k(l)m*n~o"),
    ])
    func urlPath_escapesWhatIsNotAPathCharacter(path: String, escaped: String) {
        #expect(URLPath.escape(path) == escaped)
    }
}

@Suite struct DurationTextTests {
    @Test(arguments: [("0", Duration.zero), ("1ns", .nanoseconds(1)), ("1500us", .microseconds(1500)),
                      ("1500µs", .microseconds(1500)), ("250ms", .milliseconds(250)), ("30s", .seconds(30)),
                      ("1m30s", .seconds(90)), ("1.5h", .seconds(5400)), ("2h45m", .seconds(9900)), (".5s", .milliseconds(500))])
    func parse_goDurations(text: String, duration: Duration) {
        #expect(DurationText.parse(text) == duration)
    }

    @Test(arguments: ["", "30", "s", "1x", "-1s", "+1s", "1e3s", "1.2.3s", "1 s", "1S", "9999999999h", "1sm"])
    func parse_refuses(_ text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test(arguments: [(Duration.seconds(30), "30s"), (.milliseconds(1500), "1500ms"), (.zero, "0s")])
    func render(_ d: Duration, text: String) {
        #expect(DurationText.render(d) == text)
    }
}
