import Glibc
import Testing
@testable import BaoWrapCore

@Suite struct ConfigDefaultsTests {
    @Test func load_withNothingSet_usesTheSpecDefaults() throws {
        let c = try loadConfig()
        #expect(c.connect == .auto)
        #expect(c.authPath == "kubernetes")
        #expect(c.authMethod == .kubernetes)
        #expect(c.jwtFile == "/var/run/secrets/kubernetes.io/serviceaccount/token")
        #expect(c.onMissing == .fail)
        #expect(c.profile == .hardened)
        #expect(c.timeout == .seconds(30))
        #expect(c.logFormat == .json)
        #expect(c.logLevel == .info)
        #expect(!c.logPaths && !c.requireMlock && !c.tlsSkipVerify && !c.signalGroup)
        #expect(c.address == nil && c.role == nil && c.namespace == nil && c.tlsServerName == nil)
        #expect(!c.needsOpenBao)
    }

    @Test func load_withoutSecrets_needsNoAddressOrRole() throws {
        // baowrap without secrets is a plain init; nothing to log in for.
        #expect(try loadConfig([.signalGroup: ["true"]]).signalGroup)
    }

    @Test func load_everyOptionAsVariable() throws {
        let dir = try TempDir()
        let ca = try dir.file("ca.pem"), cert = try dir.file("c.pem"), key = try dir.file("k.pem"), bca = try dir.file("b.pem")
        let c = try loadConfig(env: [
            "BAOWRAP_ADDR=https://bao.example:8200", "BAOWRAP_BROKER_ADDR=https://broker.example:8443/openbao",
            "BAOWRAP_CONNECT=broker", "BAOWRAP_CACERT=\(ca)", "BAOWRAP_BROKER_CACERT=\(bca)",
            "BAOWRAP_CLIENT_CERT=\(cert)", "BAOWRAP_CLIENT_KEY=\(key)", "BAOWRAP_TLS_SERVER_NAME=bao.internal",
            "BAOWRAP_NAMESPACE=team-a", "BAOWRAP_AUTH_PATH=jwt", "BAOWRAP_AUTH_METHOD=jwt", "BAOWRAP_ROLE=r",
            "BAOWRAP_JWT_FILE=/tmp/jwt", "BAOWRAP_EXPECT_ISSUER=iss", "BAOWRAP_EXPECT_AUDIENCE=aud",
            "BAOWRAP_EXPECT_SUBJECT=sub", "BAOWRAP_SECRETS=A=secret/a#k", "BAOWRAP_FROM_PATHS=P_=secret/p",
            "BAOWRAP_ON_MISSING=skip", "BAOWRAP_PROFILE=hardened", "BAOWRAP_TIMEOUT=5s", "BAOWRAP_SIGNAL_GROUP=1",
            "BAOWRAP_LOG_FORMAT=text", "BAOWRAP_LOG_LEVEL=debug", "BAOWRAP_LOG_PATHS=yes", "BAOWRAP_REQUIRE_MLOCK=on",
        ])
        #expect(c.address?.host == "bao.example")
        #expect(c.broker?.pathPrefix == "/openbao")
        #expect(c.connect == .broker)
        #expect(c.caCert == ca && c.brokerCACert == bca && c.clientCert == cert && c.clientKey == key)
        #expect(c.tlsServerName == "bao.internal")
        #expect(c.namespace == "team-a")
        #expect(c.authPath == "jwt" && c.authMethod == .jwt && c.role == "r" && c.jwtFile == "/tmp/jwt")
        #expect(c.expected == ExpectedClaims(issuer: "iss", audience: "aud", subject: "sub"))
        #expect(c.secrets.map(\.name) == ["A"])
        #expect(c.fromPaths == [PathBinding(prefix: "P_", location: "secret/p")])
        #expect(c.onMissing == .skip && c.timeout == .seconds(5))
        #expect(c.signalGroup && c.logPaths && c.requireMlock)
        #expect(c.logFormat == .text && c.logLevel == .debug)
        #expect(c.unknownVariables.isEmpty)
    }
}

@Suite struct ConfigPrecedenceTests {
    @Test func flag_beatsItsVariable() throws {
        let c = try loadConfig([.role: ["from-flag"], .timeout: ["2s"]],
                               env: ["BAOWRAP_ROLE=from-env", "BAOWRAP_TIMEOUT=9s"])
        #expect(c.role == "from-flag")
        #expect(c.timeout == .seconds(2))
    }

    @Test func flag_lastOneWins() throws {
        #expect(try loadConfig([.role: ["first", "second"]]).role == "second")
    }

    @Test(arguments: [
        (["BAOWRAP_ADDR=https://a:1", "BAO_ADDR=https://b:1", "VAULT_ADDR=https://c:1"], "a"),
        (["BAO_ADDR=https://b:1", "VAULT_ADDR=https://c:1"], "b"),
        (["VAULT_ADDR=https://c:1"], "c"),
        // An empty variable is unset: Kubernetes manifests often template empty values.
        (["BAOWRAP_ADDR=", "BAO_ADDR=https://b:1"], "b"),
    ])
    func address_followsTheChain(env: [String], host: String) throws {
        #expect(try loadConfig(env: env).address?.host == host)
    }

    @Test func address_flagBeatsEveryVariable() throws {
        let c = try loadConfig([.addr: ["https://flag:1"]], env: ["BAOWRAP_ADDR=https://a:1", "BAO_ADDR=https://b:1"])
        #expect(c.address?.host == "flag")
    }

    @Test func caCert_andNamespace_fallBackToTheBaoVariables() throws {
        let dir = try TempDir()
        let ca = try dir.file("ca.pem")
        let c = try loadConfig(env: ["BAO_CACERT=\(ca)", "BAO_NAMESPACE=team-b"])
        #expect(c.caCert == ca)
        #expect(c.namespace == "team-b")
        #expect(try loadConfig(env: ["BAOWRAP_NAMESPACE=team-a", "BAO_NAMESPACE=team-b"]).namespace == "team-a")
    }

    @Test func secretsList_splitsOnNewlinesAndCommas_flagsReplaceIt() throws {
        let env = ["BAOWRAP_SECRETS=A=secret/a#k,\n B=secret/b#k\r\nC=secret/c#k ,", "BAOWRAP_ADDR=https://x:1", "BAOWRAP_ROLE=r"]
        let c = try loadConfig(env: env)
        #expect(c.secrets.map(\.name) == ["A", "B", "C"])
        #expect(c.secrets.allSatisfy { $0.origin == .variableList })
        let f = try loadConfig([.secret: ["Z=secret/z#k"]], env: env)
        #expect(f.secrets.map(\.name) == ["Z"])
        #expect(f.secrets[0].origin == .flag)
    }

    @Test func unknownBaowrapVariables_areListedForAWarning() throws {
        let c = try loadConfig(env: ["BAOWRAP_ADR=https://typo:1", "BAOWRAP_ROLE=r", "BAO_SOMETHING=x"])
        #expect(c.unknownVariables == ["BAOWRAP_ADR"])
    }
}

@Suite struct ConfigValueTests {
    @Test(arguments: ["1", "true", "TRUE", "yes", "On"])
    func boolean_trueSpellings(_ v: String) throws {
        #expect(try loadConfig(env: ["BAOWRAP_LOG_PATHS=\(v)"]).logPaths)
    }

    @Test(arguments: ["0", "false", "No", "off"])
    func boolean_falseSpellings(_ v: String) throws {
        #expect(try !loadConfig(env: ["BAOWRAP_LOG_PATHS=\(v)"]).logPaths)
    }

    @Test func boolean_garbage_isRefusedNamingTheVariable() throws {
        let e = try #require(configError(env: ["BAOWRAP_REQUIRE_MLOCK=maybe"]))
        #expect(e.errorClass == .config)
        #expect(e.rendered.includes("BAOWRAP_REQUIRE_MLOCK \"maybe\" is not valid: expected true or false"))
    }

    @Test func choices_areCaseInsensitive() throws {
        let c = try loadConfig(env: ["BAOWRAP_CONNECT=Direct", "BAOWRAP_AUTH_METHOD=JWT", "BAOWRAP_LOG_FORMAT=TEXT",
                                     "BAOWRAP_ON_MISSING=SKIP", "BAOWRAP_PROFILE=Development", "BAOWRAP_LOG_LEVEL=Warning"])
        #expect(c.connect == .direct && c.authMethod == .jwt && c.logFormat == .text)
        #expect(c.onMissing == .skip && c.profile == .development && c.logLevel == .warn)
    }

    @Test(arguments: [
        (OptionKey.connect, "sideways", "--connect \"sideways\" is not one of direct, broker, auto"),
        (.authMethod, "ldap", "--auth-method \"ldap\" is not one of kubernetes, jwt"),
        (.onMissing, "ignore", "--on-missing \"ignore\" is not one of fail, skip"),
        (.profile, "prod", "--profile \"prod\" is not one of hardened, development"),
        (.logFormat, "xml", "--log-format \"xml\" is not one of json, text"),
        (.logLevel, "loud", "--log-level \"loud\" is not valid: expected debug, info, warn or error"),
    ])
    func choice_outsideTheList_namesTheOptionAndTheChoices(key: OptionKey, value: String, message: String) throws {
        let e = try #require(configError([key: [value]]))
        #expect(e.errorClass == .config)
        #expect(e.rendered == message)
    }

    @Test(arguments: [("30s", 30_000), ("1m30s", 90_000), ("1.5h", 5_400_000), ("250ms", 250), ("2m", 120_000)])
    func timeout_acceptsGoDurations(_ text: String, ms: Int64) throws {
        #expect(try loadConfig([.timeout: [text]]).timeout.milliseconds == ms)
    }

    @Test(arguments: ["30", "0", "0s", "-1s", "", "s", "1x", "1e3s", "1.2.3s", "30 s", "forever"])
    func timeout_refusesWhatIsNotAPositiveDuration(_ text: String) throws {
        let e = try #require(configError([.timeout: [text]]))
        #expect(e.errorClass == .config)
        #expect(e.rendered == "--timeout \"\(text)\" is not valid: expected a duration such as 30s, 1m or 1500ms")
    }

    @Test func authPath_isTrimmedOfSlashesAndAuthPrefix() throws {
        #expect(try loadConfig([.authPath: ["/auth/jwt/"]]).authPath == "jwt")
        #expect(try loadConfig([.authPath: ["clusters/prod/"]]).authPath == "clusters/prod")
    }

    @Test(arguments: ["/", "//", "a b", "k8s?x", "../kubernetes", "k8s%2f", "a\nb"])
    func authPath_thatIsNoMountPath_isRefused(_ v: String) throws {
        let e = try #require(configError([.authPath: [v]]))
        #expect(e.errorClass == .config)
        #expect(e.rendered.hasPrefix("--auth-path"))
    }

    @Test func namespace_isTrimmed_andHeaderInjectionRefused() throws {
        #expect(try loadConfig([.namespace: ["/team-a/child/"]]).namespace == "team-a/child")
        let e = try #require(configError(env: ["BAOWRAP_NAMESPACE=team-a\r\nX-Evil: 1"]))
        #expect(e.rendered.hasPrefix("BAOWRAP_NAMESPACE"))
        #expect(e.rendered.includes("control character"))
    }

    @Test func tlsServerName_mustBeADNSName() throws {
        #expect(try loadConfig([.tlsServerName: ["openbao.test"]]).tlsServerName == "openbao.test")
        for bad in ["a:b", "a b", "", "-x.test", "ä.test"] {
            let e = try #require(configError([.tlsServerName: [bad]]))
            #expect(e.rendered.includes("expected a DNS name"), "\(bad)")
        }
    }

    @Test func addr_thatIsNoURL_namesTheVariableItCameFrom() throws {
        let e = try #require(configError(env: ["VAULT_ADDR=openbao:8200"]))
        #expect(e.rendered.hasPrefix("VAULT_ADDR \"openbao:8200\" is not a usable URL"))
    }
}

@Suite struct ConfigFileTests {
    @Test func caCert_missingAbsolutePath_isRefusedUpFront() throws {
        let e = try #require(configError([.caCert: ["/nonexistent/ca.pem"]]))
        #expect(e.errorClass == .config)
        #expect(e.rendered.hasPrefix("--ca-cert /nonexistent/ca.pem cannot be read"))
        #expect(e.errno == .noSuchFileOrDirectory)
        #expect(e.hint == nil)
    }

    @Test func caCert_missingRelativePath_hintsAtTheWorkingDirectory() throws {
        let e = try #require(configError(env: ["BAOWRAP_CACERT=certs/ca.pem"]))
        #expect(e.rendered.hasPrefix("BAOWRAP_CACERT certs/ca.pem cannot be read"))
        #expect(e.hint == "relative paths are taken from the working directory")
    }

    @Test func caCert_aDirectory_isNotACAFile() throws {
        // open(2) succeeds on a directory; the check must not.
        let e = try #require(configError([.caCert: ["/tmp"]]))
        #expect(e.rendered == "--ca-cert /tmp cannot be read: \(Errno.isDirectory)")
    }

    @Test(arguments: [OptionKey.brokerCACert, .clientCert, .clientKey])
    func everyFileOption_isChecked(_ key: OptionKey) throws {
        let e = try #require(configError([key: ["/nonexistent/file.pem"]]))
        #expect(e.rendered.includes("/nonexistent/file.pem cannot be read"))
    }

    @Test func clientCert_withoutKey_isRefused() throws {
        let dir = try TempDir()
        let e = try #require(configError([.clientCert: [try dir.file("c.pem")]]))
        #expect(e.rendered == "--client-cert and --client-key must be given together")
    }
}

@Suite struct ConfigCrossRuleTests {
    @Test func brokerMode_needsABroker() throws {
        let e = try #require(configError([.connect: ["broker"]]))
        #expect(e.rendered.hasPrefix("--connect broker needs --broker URL"))
    }

    @Test func brokerMode_needsNoDirectAddress() throws {
        var f = minimalFlags
        f[.addr] = nil
        f[.broker] = ["https://broker:8443/openbao"]
        f[.connect] = ["broker"]
        #expect(try loadConfig(f).address == nil)
    }

    @Test func secrets_needAnAddress() throws {
        var f = minimalFlags
        f[.addr] = nil
        let e = try #require(configError(f))
        #expect(e.rendered.hasPrefix("no OpenBao address"))
        #expect(e.hint?.includes("BAO_ADDR") == true)
    }

    @Test func secrets_needARole() throws {
        var f = minimalFlags
        f[.role] = nil
        let e = try #require(configError(f))
        #expect(e.rendered.hasPrefix("no auth role"))
    }

    @Test func hardened_refusesPlainHTTP_developmentAllowsIt() throws {
        var f = minimalFlags
        f[.addr] = ["http://127.0.0.1:8200"]
        let e = try #require(configError(f))
        #expect(e.rendered.hasPrefix("http:// address refused by the hardened profile"))
        f[.profile] = ["development"]
        #expect(try loadConfig(f).address?.scheme == .http)
    }

    @Test func hardened_refusesSkipVerifyAndStaticToken() throws {
        #expect(configError([.tlsSkipVerify: ["true"]])?.rendered.hasPrefix("--tls-skip-verify refused") == true)
        #expect(configError(env: ["BAOWRAP_TOKEN=s.x"])?.rendered.hasPrefix("BAOWRAP_TOKEN (static token) refused") == true)
    }
}

@Suite struct ConfigSecretTests {
    @Test(arguments: [
        ("DB", "--secret entry \"DB\" is not NAME=REF"),
        ("1DB=secret/a#k", "\"1DB\" is not a valid variable name"),
        ("D-B=secret/a#k", "\"D-B\" is not a valid variable name"),
        ("=secret/a#k", "\"\" is not a valid variable name"),
        ("BAOWRAP_X=secret/a#k", "BAOWRAP_* variables are baowrap's own"),
        ("DB=secret", "malformed secret reference \"secret\""),
        ("DB=secret#k", "needs a mount and a path"),
        ("DB=secret/a#", "has an empty key"),
        ("DB=secret/a#k#0", "has a bad version \"0\""),
    ])
    func secretFlag_mistake_getsItsOwnMessage(entry: String, message: String) throws {
        var f = minimalFlags
        f[.secret] = [entry]
        let e = try #require(configError(f))
        #expect(e.errorClass == .config)
        #expect(e.rendered.includes(message), "\(e.rendered)")
    }

    @Test func malformedReference_namesTheVariable() throws {
        var f = minimalFlags
        f[.secret] = ["DB=secret/a"]
        #expect(configError(f)?.variable == "DB")
    }

    @Test func inheritedReference_isABinding() throws {
        var f = minimalFlags
        f[.secret] = nil
        let c = try loadConfig(f, env: ["DB=bao:secret/app/db#password", "API=vault:kv1/api#token#2", "PLAIN=hello",
                                        "NOT_A_REF=xbao:secret/a#k", "BAOWRAP_ROLE=bao:secret/a#k"])
        #expect(c.secrets.map(\.name) == ["DB", "API"])
        #expect(c.secrets.allSatisfy { $0.origin == .inherited })
        #expect(c.secrets[1].ref == SecretRef(location: "kv1/api", key: "token", version: 2))
    }

    @Test func inheritedReference_malformed_isRefusedNamingTheVariable() throws {
        let e = try #require(configError(minimalFlags, env: ["API=bao:kv1"]))
        #expect(e.variable == "API")
        #expect(e.rendered.hasPrefix("API: malformed secret reference"))
    }

    @Test func inheritedReference_notUTF8_isRefused() throws {
        let env = TestEnvironment([Array("API=bao:secret/a\u{0}".utf8).dropLast() + [0xff] + Array("#k".utf8)])
        let e: BaoWrapError? = withExtendedLifetime(env) { () -> BaoWrapError? in
            do throws(BaoWrapError) { _ = try Config.load(flags: minimalFlags, environment: env.entries); return nil } catch { return error }
        }
        #expect(e?.variable == "API")
        #expect(e?.rendered.includes("not valid UTF-8") == true)
    }

    @Test func secretFlag_andInheritedReference_disagreeing_isRefused() throws {
        let e = try #require(configError(minimalFlags, env: ["DB=bao:secret/other#password"]))
        #expect(e.variable == "DB")
        #expect(e.rendered.includes("bound twice, to secret/app/db#password and secret/other#password"))
    }

    @Test func secretFlag_andInheritedReference_agreeing_isOneBinding() throws {
        let c = try loadConfig(minimalFlags, env: ["DB=vault:secret/app/db#password"])
        #expect(c.secrets.count == 1)
        #expect(c.secrets[0].origin == .flag)
    }

    @Test func sameNameTwiceWithDifferentRefs_isRefused() throws {
        var f = minimalFlags
        f[.secret] = ["DB=secret/a#k", "DB=secret/b#k"]
        #expect(configError(f)?.variable == "DB")
    }
}

@Suite struct ConfigFromPathTests {
    func fromPath(_ entries: [String]) throws(BaoWrapError) -> [PathBinding] {
        var f = minimalFlags
        f[.secret] = nil
        f[.fromPath] = entries
        return try loadConfig(f).fromPaths
    }

    @Test func entries_parse_withPrefixesStripped_andDuplicatesMerged() throws {
        let p = try fromPath(["APP_=secret/app", "=kv1/app/api", "DB_=bao:secret/app/db", "APP_=secret/app"])
        #expect(p == [PathBinding(prefix: "APP_", location: "secret/app"), PathBinding(prefix: "", location: "kv1/app/api"),
                      PathBinding(prefix: "DB_", location: "secret/app/db")])
    }

    @Test(arguments: [
        ("APP_", "is not PREFIX=PATH"),
        ("1X=secret/app", "prefix \"1X\" is not a valid variable name start"),
        ("BAOWRAP_=secret/app", "BAOWRAP_* variables are baowrap's own"),
        ("X_=secret/app#key", "names a key; it takes a whole secret"),
        ("X_=secret", "needs a mount and a path"),
        ("X_=secret//app", "empty path segment"),
    ])
    func entry_mistake_getsItsOwnMessage(entry: String, message: String) throws {
        do {
            _ = try fromPath([entry])
            Issue.record("\(entry) accepted")
        } catch {
            #expect(error.errorClass == .config)
            #expect(error.rendered.includes(message), "\(error.rendered)")
        }
    }
}

/// A scratch directory, removed with its files when the test ends.
final class TempDir {
    let path: String
    private var files: [String] = []

    init() throws {
        var template = Array("/tmp/baowrap-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw BaoWrapError(.system, "mkdtemp failed") }
        path = String(cString: p)
    }

    /// Creates a file and returns its absolute path.
    func file(_ name: String, _ content: String = "x") throws -> String {
        let full = path + "/" + name
        guard let f = fopen(full, "w") else { throw BaoWrapError(.system, "cannot create \(full)") }
        fputs(content, f)
        fclose(f)
        files.append(full)
        return full
    }

    deinit {
        files.forEach { unlink($0) }
        rmdir(path)
    }
}
