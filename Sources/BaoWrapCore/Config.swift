import Glibc

public enum ConnectMode: String, Sendable, CaseIterable { case direct, broker, auto }
public enum AuthMethod: String, Sendable, CaseIterable { case kubernetes, jwt }
public enum Profile: String, Sendable, CaseIterable { case hardened, development }
public enum OnMissing: String, Sendable, CaseIterable { case fail, skip }
public enum LogFormat: String, Sendable, CaseIterable { case json, text }
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warn, error
    public var name: String { ["debug", "info", "warn", "error"][rawValue] }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
    init?(name: String) {
        switch name.asciiLowercased {
        case "debug", "trace": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "error": self = .error
        default: return nil
        }
    }
}

/// What a changed secret does to the running command (`--on-change`).
public enum ChangeAction: Equatable, Sendable {
    case restart
    case signal(Signal)
    case exit

    init?(_ text: String) {
        switch text.asciiLowercased {
        case "restart": self = .restart
        case "exit": self = .exit
        default:
            guard text.asciiLowercased.hasPrefix("signal:"), let s = Signal(name: String(text.dropFirst(7))) else { return nil }
            self = .signal(s)
        }
    }
}

/// Claims the user expects in the JWT, checked locally before logging in.
public struct ExpectedClaims: Sendable, Equatable {
    public var issuer: String?
    public var audience: String?
    public var subject: String?
}

/// The validated settings of one run: every flag merged with its
/// environment variable (the flag wins; BAOWRAP_ → BAO_ → VAULT_), checked up
/// front so a mistake is one clear `config` error before anything happens.
public struct Config {
    public var address: Endpoint?
    public var broker: Endpoint?
    public var connect: ConnectMode = .auto
    public var caCert: String?
    public var brokerCACert: String?
    public var clientCert: String?
    public var clientKey: String?
    public var tlsServerName: String?
    public var namespace: String?
    public var authPath = "kubernetes"
    public var authMethod: AuthMethod = .kubernetes
    public var role: String?
    public var jwtFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    public var expected = ExpectedClaims()
    public var secrets: [SecretBinding] = []
    public var fromPaths: [PathBinding] = []
    public var onMissing: OnMissing = .fail
    public var profile: Profile = .hardened
    public var timeout: Duration = .seconds(30)
    public var signalGroup = false
    /// `--watch`: how often to check for new secret versions; nil when off.
    public var watch: Duration?
    public var onChange: ChangeAction = .restart
    public var stopSignal: Signal = .term
    public var stopTimeout: Duration = .seconds(10)
    /// Consecutive failed watch checks after which baowrap gives up; nil: never.
    public var watchFailAfter: Int?
    public var logFormat: LogFormat = .json
    public var logLevel: LogLevel = .info
    public var logPaths = false
    public var requireMlock = false
    public var tlsSkipVerify = false
    /// The environment entry holding BAOWRAP_TOKEN; its value is copied
    /// into locked memory when needed and never becomes a `String`.
    public var staticToken: EnvironmentEntry?
    public var dryRun = false
    /// Unknown BAOWRAP_* variables, reported as a warning each.
    public var unknownVariables: [String] = []

    /// Whether any secret is configured; without one, baowrap is a plain
    /// init process and never contacts OpenBao.
    public var needsOpenBao: Bool { !secrets.isEmpty || !fromPaths.isEmpty }

    /// Relaxations of the hardened rules in use, for the development
    /// profile's single `security_risk` line.
    public var relaxations: [String] {
        var r: [String] = []
        if address?.scheme == .http || broker?.scheme == .http { r.append("http_address") }
        if tlsSkipVerify { r.append("tls_skip_verify") }
        if staticToken != nil { r.append("static_token") }
        if [caCert, brokerCACert].contains(where: { $0.map(FileCheck.isWorldWritable) ?? false }) { r.append("world_writable_ca_file") }
        if staticToken == nil && needsOpenBao && FileCheck.isWorldWritable(jwtFile) { r.append("world_writable_jwt_file") }
        r.append("jwt_checks_warn_only")
        r.append("raw_paths_in_logs")
        return r
    }

    /// Paths appear raw in logs and `check` output only when asked for.
    public var showPaths: Bool { logPaths || profile == .development }

    public init() {}

    /// The log level and format alone, read leniently (a bad value keeps the
    /// default), so that even a configuration error is reported in the
    /// format that was asked for.
    public static func logSettings(flags: [OptionKey: [String]], environment: [EnvironmentEntry]) -> (level: LogLevel, format: LogFormat) {
        let source = Source(flags: flags, environment: environment)
        return (source.value(.logLevel).flatMap(LogLevel.init(name:)) ?? .info,
                source.value(.logFormat).flatMap { LogFormat(rawValue: $0.asciiLowercased) } ?? .json)
    }

    public static func load(flags: [OptionKey: [String]], environment: [EnvironmentEntry]) throws(BaoWrapError) -> Config {
        let source = Source(flags: flags, environment: environment)
        let env = source.env
        var c = Config()

        // Logging first, so everything after can be reported in the right format.
        if let v = source.value(.logFormat) { c.logFormat = try choice(v, .logFormat) }
        if let v = source.value(.logLevel) {
            guard let level = LogLevel(name: v) else { throw source.bad(.logLevel, v, "debug, info, warn or error") }
            c.logLevel = level
        }
        if let v = source.value(.profile) { c.profile = try choice(v, .profile) }
        c.logPaths = try source.bool(.logPaths)
        c.requireMlock = try source.bool(.requireMlock)
        c.tlsSkipVerify = try source.bool(.tlsSkipVerify)
        c.signalGroup = try source.bool(.signalGroup)
        c.dryRun = try source.bool(.dryRun)

        if let v = source.value(.addr) { c.address = try Endpoint.parse(v, option: source.origin(.addr)) }
        if let v = source.value(.broker) { c.broker = try Endpoint.parse(v, option: source.origin(.broker)) }
        if let v = source.value(.connect) { c.connect = try choice(v, .connect) }
        c.caCert = try source.file(.caCert)
        c.brokerCACert = try source.file(.brokerCACert)
        c.clientCert = try source.file(.clientCert)
        c.clientKey = try source.file(.clientKey)
        if let v = source.value(.tlsServerName) {
            guard DNSName.isValid(v) else { throw source.bad(.tlsServerName, v, "a DNS name such as openbao.example.com") }
            c.tlsServerName = v
        }
        if let v = source.value(.namespace) {
            let trimmed = v.split(separator: "/").joined(separator: "/")
            if let problem = SecretRef.pathProblem(trimmed) { throw .config("\(source.origin(.namespace)) \"\(v)\" \(problem)") }
            c.namespace = trimmed.isEmpty ? nil : trimmed
        }
        if let v = source.value(.authPath) {
            var trimmed = v.split(separator: "/").joined(separator: "/")
            if trimmed.hasPrefix("auth/") { trimmed.removeFirst(5) }
            guard !trimmed.isEmpty else { throw source.bad(.authPath, v, "an auth mount path such as kubernetes") }
            if let problem = SecretRef.pathProblem(trimmed) { throw .config("\(source.origin(.authPath)) \"\(v)\" \(problem)") }
            c.authPath = trimmed
        }
        if let v = source.value(.authMethod) { c.authMethod = try choice(v, .authMethod) }
        c.role = source.value(.role)
        if let v = source.value(.jwtFile) { c.jwtFile = v }
        c.expected = ExpectedClaims(issuer: source.value(.expectIssuer), audience: source.value(.expectAudience),
                                    subject: source.value(.expectSubject))
        if let v = source.value(.onMissing) { c.onMissing = try choice(v, .onMissing) }
        if let v = source.value(.timeout) {
            guard let d = DurationText.parse(v), d > .zero else { throw source.bad(.timeout, v, "a duration such as 30s, 1m or 1500ms") }
            c.timeout = d
        }
        if let v = source.value(.watch), v.asciiLowercased != "off" {
            // Faster than this is hammering OpenBao, not watching it.
            guard let d = DurationText.parse(v), d >= .milliseconds(100) else {
                throw source.bad(.watch, v, "a duration of at least 100ms such as 1m, or off")
            }
            c.watch = d
        }
        if let v = source.value(.onChange) {
            guard let a = ChangeAction(v) else { throw source.bad(.onChange, v, "restart, exit or signal:NAME such as signal:HUP") }
            c.onChange = a
        }
        if let v = source.value(.stopSignal) {
            guard let s = Signal(name: v) else { throw source.bad(.stopSignal, v, "a signal name such as TERM or SIGINT") }
            c.stopSignal = s
        }
        if let v = source.value(.stopTimeout) {
            guard let d = DurationText.parse(v), d >= .zero else { throw source.bad(.stopTimeout, v, "a duration such as 10s, or 0 for SIGKILL at once") }
            c.stopTimeout = d
        }
        if let v = source.value(.watchFailAfter), v.asciiLowercased != "never" {
            guard let n = Int(v), n > 0 else { throw source.bad(.watchFailAfter, v, "a positive number of checks, or never") }
            c.watchFailAfter = n
        }
        if let t = env["BAOWRAP_TOKEN"], !t.valueBytes.isEmpty { c.staticToken = t }

        c.secrets = try bindings(source, environment: environment)
        c.fromPaths = try pathBindings(source)
        c.unknownVariables = env.keys.filter { $0.hasPrefix("BAOWRAP_") && !Options.ownVariables.contains($0) }.sorted()
        try c.validate()
        return c
    }

    /// Cross-option rules and the profile's refusals.
    func validate() throws(BaoWrapError) {
        if (clientCert == nil) != (clientKey == nil) {
            throw .config("--client-cert and --client-key must be given together")
        }
        if connect == .broker && broker == nil {
            throw .config("--connect broker needs --broker URL (BAOWRAP_BROKER_ADDR)")
        }
        if profile == .hardened {
            let hint = "allowed only with --profile development (BAOWRAP_PROFILE=development)"
            if address?.scheme == .http { throw .config("http:// address refused by the hardened profile", hint: hint) }
            if broker?.scheme == .http { throw .config("http:// broker refused by the hardened profile", hint: hint) }
            if tlsSkipVerify { throw .config("--tls-skip-verify refused by the hardened profile", hint: hint) }
            if staticToken != nil { throw .config("BAOWRAP_TOKEN (static token) refused by the hardened profile", hint: hint + "; use a JWT login") }
            for file in [caCert, brokerCACert].compactMap({ $0 }) where FileCheck.isWorldWritable(file) {
                throw .config("CA file \(file) is world-writable; anyone could swap the trust anchor", hint: "chmod o-w \(file)")
            }
        }
        guard needsOpenBao else { return }
        if connect != .broker && address == nil {
            throw .config("no OpenBao address", hint: "set --addr or BAOWRAP_ADDR (or BAO_ADDR / VAULT_ADDR)")
        }
        if staticToken == nil && (role ?? "").isEmpty {
            throw .config("no auth role", hint: "set --role or BAOWRAP_ROLE to the \(authMethod.rawValue) auth role bound to this ServiceAccount")
        }
    }

    // MARK: secrets

    private static func bindings(_ source: Source, environment: [EnvironmentEntry]) throws(BaoWrapError) -> [SecretBinding] {
        var out: [SecretBinding] = []
        var byName: [String: SecretBinding] = [:]
        func add(_ b: SecretBinding) throws(BaoWrapError) {
            if let existing = byName[b.name] {
                guard existing.ref == b.ref else {
                    throw BaoWrapError(.config, "bound twice, to \(existing.ref) and \(b.ref)", variable: b.name,
                                       hint: "keep one reference per variable")
                }
                return
            }
            byName[b.name] = b
            out.append(b)
        }
        let (entries, origin) = source.list(.secret)
        for entry in entries {
            try add(SecretBinding.parse(entry: entry, origin: origin == .flag ? .flag : .variableList))
        }
        for e in environment where !e.name.hasPrefix("BAOWRAP_") {
            let bytes = e.valueBytes
            guard SecretRef.prefixes.contains(where: { p in bytes.starts(with: p.utf8) }) else { continue }
            guard e.value.utf8.elementsEqual(bytes) else {
                throw BaoWrapError(.config, "its bao:/vault: reference is not valid UTF-8", variable: e.name)
            }
            let ref: SecretRef
            do { ref = try SecretRef.parse(e.value) } catch { throw error.with(variable: e.name) }
            try add(SecretBinding(name: e.name, ref: ref, origin: .inherited))
        }
        return out
    }

    private static func pathBindings(_ source: Source) throws(BaoWrapError) -> [PathBinding] {
        var out: [PathBinding] = []
        for entry in source.list(.fromPath).0 {
            guard let eq = entry.firstIndex(of: "=") else {
                throw .config("--from-path entry \"\(entry)\" is not PREFIX=PATH", hint: "e.g. --from-path DB_=secret/app/db (PREFIX may be empty: =secret/app/db)")
            }
            let prefix = String(entry[..<eq]).trimmingSpaces
            guard EnvName.isValidPrefix(prefix) else { throw .config("--from-path prefix \"\(prefix)\" is not a valid variable name start") }
            guard !EnvName.isReserved(prefix) else { throw .config("--from-path prefix \"\(prefix)\": BAOWRAP_* variables are baowrap's own and never reach the command") }
            var location = String(entry[entry.index(after: eq)...]).trimmingSpaces
            for p in SecretRef.prefixes where location.hasPrefix(p) { location = String(location.dropFirst(p.count)) }
            guard !location.contains("#") else {
                throw .config("--from-path \"\(entry)\" names a key; it takes a whole secret", hint: "drop the #KEY part, or use --secret")
            }
            let binding = PathBinding(prefix: prefix, location: try SecretRef.validateLocation(location, in: location))
            if !out.contains(binding) { out.append(binding) }
        }
        return out
    }

    private static func choice<T: RawRepresentable & CaseIterable>(_ v: String, _ key: OptionKey) throws(BaoWrapError) -> T where T.RawValue == String {
        guard let t = T(rawValue: v.asciiLowercased) else {
            throw .config("\(Options.spec(key).flag.map { "--" + $0 } ?? key.rawValue) \"\(v)\" is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }
}

/// Looks options up in the flags first, then along the variable chain.
private struct Source {
    enum Origin: Equatable { case flag, variable(String), none }
    let flags: [OptionKey: [String]]
    /// The first entry of each name, as getenv(3) sees it.
    let env: [String: EnvironmentEntry]

    init(flags: [OptionKey: [String]], environment: [EnvironmentEntry]) {
        self.flags = flags
        var env: [String: EnvironmentEntry] = [:]
        for e in environment where env[e.name] == nil { env[e.name] = e }
        self.env = env
    }

    func lookup(_ key: OptionKey) -> (String, Origin)? {
        if let v = flags[key]?.last { return (v, .flag) }
        for name in Options.spec(key).variables {
            if let e = env[name], !e.valueBytes.isEmpty, name != "BAOWRAP_TOKEN" { return (e.value, .variable(name)) }
        }
        return nil
    }

    func value(_ key: OptionKey) -> String? { lookup(key)?.0 }

    /// How the user set the option, for messages: "--addr" or "BAO_ADDR".
    func origin(_ key: OptionKey) -> String {
        if case .variable(let name)? = lookup(key)?.1 { return name }
        return "--" + (Options.spec(key).flag ?? key.rawValue)
    }

    func bad(_ key: OptionKey, _ value: String, _ expected: String) -> BaoWrapError {
        .config("\(origin(key)) \"\(value)\" is not valid: expected \(expected)")
    }

    func bool(_ key: OptionKey) throws(BaoWrapError) -> Bool {
        guard let (v, _) = lookup(key) else { return false }
        switch v.asciiLowercased {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw bad(key, v, "true or false")
        }
    }

    /// A file that must exist and be readable now, so a typo fails before
    /// any network call. Relative paths are relative to the working directory.
    func file(_ key: OptionKey) throws(BaoWrapError) -> String? {
        guard let path = value(key) else { return nil }
        if let e = FileCheck.readProblem(path) {
            throw BaoWrapError(.config, "\(origin(key)) \(path) cannot be read",
                               hint: path.hasPrefix("/") ? nil : "relative paths are taken from the working directory", errno: e)
        }
        return path
    }

    /// Repeated options: the flags replace the variable as a whole.
    func list(_ key: OptionKey) -> ([String], Origin) {
        if let v = flags[key], !v.isEmpty { return (v, .flag) }
        for name in Options.spec(key).variables {
            if let e = env[name], !e.valueBytes.isEmpty {
                let items = e.value.split(whereSeparator: { $0 == "\n" || $0 == "," || $0 == "\r\n" })
                    .map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
                return (items, .variable(name))
            }
        }
        return ([], .none)
    }
}

/// Host names for --tls-server-name: they go into curl's CONNECT_TO
/// mapping and the certificate check, so only DNS characters pass.
enum DNSName {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 253 && !name.hasPrefix(".") && !name.hasPrefix("-")
            && name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "-" || $0 == "." || $0 == "_" }
    }
}

enum FileCheck {
    static func isReadable(_ path: String) -> Bool { readProblem(path) == nil }

    /// Why `path` cannot be read as a file, if it cannot. A directory opens
    /// fine, so it is caught here rather than by libcurl mid-handshake.
    static func readProblem(_ path: String) -> Errno? {
        let fd: CInt
        switch valueOrErrno(retryOnInterrupt: true, { system_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }) {
        case .success(let v): fd = v
        case .failure(let e): return e
        }
        defer { _ = system_close(fd) }
        var st = stat()
        if system_fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR { return .isDirectory }
        return nil
    }

    static func isWorldWritable(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return st.st_mode & S_IWOTH != 0
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
