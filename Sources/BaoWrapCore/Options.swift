/// Every setting baowrap accepts, once: its flag, its environment variables
/// (first one found wins), its default and its help. `--help`, the parser,
/// the environment reader and docs/configuration.md's test all read this
/// table, so they cannot disagree.
public enum OptionKey: String, CaseIterable, Sendable {
    case addr, broker, connect, caCert, brokerCACert, clientCert, clientKey, tlsServerName
    case namespace, authPath, authMethod, role, jwtFile
    case expectIssuer, expectAudience, expectSubject
    case secret, fromPath, onMissing, profile, timeout, signalGroup
    case watch, onChange, stopSignal, stopTimeout, watchFailAfter
    case logFormat, logLevel, logPaths, requireMlock, tlsSkipVerify, token
    case dryRun
}

public struct OptionSpec: Sendable {
    public enum Arity: Sendable { case flag, value, repeated }

    public let key: OptionKey
    /// Long flag without the dashes; nil for environment-only settings.
    public let flag: String?
    public let variables: [String]
    public let arity: Arity
    public let valueName: String
    public let defaultText: String
    public let help: String
    /// Subcommands other than the main run that accept it ("check").
    public let onlyFor: String?

    init(_ key: OptionKey, _ flag: String?, _ variables: [String], _ arity: Arity, value valueName: String = "",
         default defaultText: String = "", _ help: String, onlyFor: String? = nil) {
        self.key = key
        self.flag = flag
        self.variables = variables
        self.arity = arity
        self.valueName = valueName
        self.defaultText = defaultText
        self.help = help
        self.onlyFor = onlyFor
    }
}

public enum Options {
    public static let table: [OptionSpec] = [
        .init(.addr, "addr", ["BAOWRAP_ADDR", "BAO_ADDR", "VAULT_ADDR"], .value, value: "URL",
              "OpenBao address, e.g. https://openbao.openbao.svc:8200"),
        .init(.broker, "broker", ["BAOWRAP_BROKER_ADDR"], .value, value: "URL",
              "in-cluster broker: an OpenBao-API-compatible HTTPS endpoint, may carry a path prefix"),
        .init(.connect, "connect", ["BAOWRAP_CONNECT"], .value, value: "MODE", default: "auto",
              "direct, broker, or auto (broker when set, direct only when the broker cannot be connected to)"),
        .init(.caCert, "ca-cert", ["BAOWRAP_CACERT", "BAO_CACERT"], .value, value: "FILE", default: "system roots",
              "CA bundle that must sign the server certificate"),
        .init(.brokerCACert, "broker-ca-cert", ["BAOWRAP_BROKER_CACERT"], .value, value: "FILE", default: "--ca-cert",
              "CA bundle that must sign the broker certificate"),
        .init(.clientCert, "client-cert", ["BAOWRAP_CLIENT_CERT"], .value, value: "FILE",
              "client certificate (PEM) for mTLS"),
        .init(.clientKey, "client-key", ["BAOWRAP_CLIENT_KEY"], .value, value: "FILE",
              "client private key (PEM) for mTLS"),
        .init(.tlsServerName, "tls-server-name", ["BAOWRAP_TLS_SERVER_NAME"], .value, value: "NAME", default: "host of URL",
              "name verified in the server certificate (and sent as SNI)"),
        .init(.namespace, "namespace", ["BAOWRAP_NAMESPACE", "BAO_NAMESPACE"], .value, value: "NS",
              "OpenBao namespace (X-Vault-Namespace)"),
        .init(.authPath, "auth-path", ["BAOWRAP_AUTH_PATH"], .value, value: "PATH", default: "kubernetes",
              "auth mount; baowrap logs in at auth/PATH/login"),
        .init(.authMethod, "auth-method", ["BAOWRAP_AUTH_METHOD"], .value, value: "METHOD", default: "kubernetes",
              "kubernetes or jwt"),
        .init(.role, "role", ["BAOWRAP_ROLE"], .value, value: "ROLE", default: "required",
              "auth role to log in with"),
        .init(.jwtFile, "jwt-file", ["BAOWRAP_JWT_FILE"], .value, value: "FILE",
              default: "/var/run/secrets/kubernetes.io/serviceaccount/token",
              "ServiceAccount JWT, re-read before every login"),
        .init(.expectIssuer, "expect-issuer", ["BAOWRAP_EXPECT_ISSUER"], .value, value: "ISS",
              "check the JWT's iss claim before logging in"),
        .init(.expectAudience, "expect-audience", ["BAOWRAP_EXPECT_AUDIENCE"], .value, value: "AUD",
              "check that the JWT's aud claim contains AUD before logging in"),
        .init(.expectSubject, "expect-subject", ["BAOWRAP_EXPECT_SUBJECT"], .value, value: "SUB",
              "check the JWT's sub claim before logging in"),
        .init(.secret, "secret", ["BAOWRAP_SECRETS"], .repeated, value: "NAME=REF",
              "put secret REF ([bao:|vault:]MOUNT/PATH#KEY[#VERSION]) into env var NAME; the variable takes entries separated by newlines or commas"),
        .init(.fromPath, "from-path", ["BAOWRAP_FROM_PATHS"], .repeated, value: "PREFIX=PATH",
              "every key of the secret at PATH becomes env var PREFIX+KEY (upper-cased, other characters as _)"),
        .init(.onMissing, "on-missing", ["BAOWRAP_ON_MISSING"], .value, value: "fail|skip", default: "fail",
              "what to do when a secret does not exist: fail closed, or leave its variable unset"),
        .init(.profile, "profile", ["BAOWRAP_PROFILE"], .value, value: "hardened|development", default: "hardened",
              "security profile (see docs/security.md)"),
        .init(.timeout, "timeout", ["BAOWRAP_TIMEOUT"], .value, value: "DURATION", default: "30s",
              "deadline for login and fetch, retries included"),
        .init(.signalGroup, "signal-group", ["BAOWRAP_SIGNAL_GROUP"], .flag,
              "forward signals to the child's whole process group"),
        .init(.watch, "watch", ["BAOWRAP_WATCH"], .value, value: "DURATION", default: "off",
              "after the start, check every unpinned secret for a new version this often (with jitter) and apply --on-change"),
        .init(.onChange, "on-change", ["BAOWRAP_ON_CHANGE"], .value, value: "restart|signal:NAME|exit", default: "restart",
              "what a changed secret does with --watch: restart the command with the new values, send it signal NAME, or stop it and exit 75"),
        .init(.stopSignal, "stop-signal", ["BAOWRAP_STOP_SIGNAL"], .value, value: "NAME", default: "SIGTERM",
              "signal that asks the command to stop for a restart or exit"),
        .init(.stopTimeout, "stop-timeout", ["BAOWRAP_STOP_TIMEOUT"], .value, value: "DURATION", default: "10s",
              "how long the command may take to stop before SIGKILL"),
        .init(.watchFailAfter, "watch-fail-after", ["BAOWRAP_WATCH_FAIL_AFTER"], .value, value: "N", default: "never",
              "stop the command and exit 125 after N failed watch checks in a row"),
        .init(.logFormat, "log-format", ["BAOWRAP_LOG_FORMAT"], .value, value: "json|text", default: "json",
              "log line format on stderr"),
        .init(.logLevel, "log-level", ["BAOWRAP_LOG_LEVEL"], .value, value: "LEVEL", default: "info",
              "debug, info, warn or error"),
        .init(.logPaths, "log-paths", ["BAOWRAP_LOG_PATHS"], .flag,
              "show raw secret paths in logs (otherwise a short hash)"),
        .init(.requireMlock, "require-mlock", ["BAOWRAP_REQUIRE_MLOCK"], .flag,
              "fail (125) when secret pages cannot be locked in memory"),
        .init(.tlsSkipVerify, "tls-skip-verify", ["BAOWRAP_TLS_SKIP_VERIFY"], .flag,
              "do not verify server certificates (development profile only)"),
        .init(.token, nil, ["BAOWRAP_TOKEN"], .value, value: "TOKEN",
              "static client token instead of a JWT login (development profile only)"),
        .init(.dryRun, "dry-run", [], .flag,
              "validate the configuration and print the secrets table without contacting OpenBao", onlyFor: "check"),
    ]

    public static func spec(_ key: OptionKey) -> OptionSpec { table.first { $0.key == key }! }

    /// The BAOWRAP_* variables baowrap knows; any other BAOWRAP_* variable is
    /// warned about as a likely typo.
    public static let ownVariables: Set<String> = Set(table.flatMap { $0.variables }.filter { $0.hasPrefix("BAOWRAP_") })

    public static let usage = """
        Usage:
          baowrap [OPTIONS] [--] COMMAND [ARG...]   run COMMAND with secrets in its environment
          baowrap check [OPTIONS]                   resolve every secret, print NAME / source / version
          baowrap install DEST_DIR                  copy this binary to DEST_DIR/baowrap (mode 0555)
          baowrap version                           print version and linked libraries
        """

    /// `--help` text, rendered from the table.
    public static var helpText: String {
        var lines = [usage, "", "Options (every option also reads its environment variable; the flag wins):"]
        for o in table {
            var head = o.flag.map { "  --\($0)" } ?? "  (no flag)"
            if o.arity != .flag, o.flag != nil { head += " \(o.valueName)" }
            lines.append(head)
            var detail = "      \(o.help)"
            if !o.defaultText.isEmpty { detail += " [default: \(o.defaultText)]" }
            lines.append(detail)
            if !o.variables.isEmpty { lines.append("      env: \(o.variables.joined(separator: ", then "))") }
            if let only = o.onlyFor { lines.append("      only for: baowrap \(only)") }
        }
        lines.append("  -h, --help")
        lines.append("      show this help")
        lines.append("")
        lines.append("Exit status: the command's own; 128+N if it died of signal N; 125 if baowrap failed")
        lines.append("before starting it; 126 if it is not executable; 127 if it was not found.")
        lines.append("Secret references: docs/references.md. Every error class: docs/troubleshooting.md.")
        return lines.joined(separator: "\n") + "\n"
    }
}
