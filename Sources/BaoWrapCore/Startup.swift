/// Everything between a validated configuration and a set of resolved
/// variables: the route, the login, the resolution, the memory-lock
/// verdict. Holds the client so the token can be revoked after the spawn.
public final class Startup {
    public let config: Config
    public let log: Logger
    public let report = MemoryLockReport()
    public let arena: SecretArena
    public private(set) var client: OpenBaoClient?
    let interrupt: (any InterruptSource)?

    public init(config: Config, log: Logger, interrupt: (any InterruptSource)?) {
        self.config = config
        self.log = log
        self.interrupt = interrupt
        arena = SecretArena(report: report)
    }

    /// The route requests start on, and the one `auto` may fall back to.
    public static func routes(_ c: Config) throws(BaoWrapError) -> (primary: Route, fallback: Route?) {
        func direct() throws(BaoWrapError) -> Route {
            guard let a = c.address else { throw .config("no OpenBao address", hint: "set --addr or BAOWRAP_ADDR") }
            return try Route(kind: .direct, endpoint: a, caFile: c.caCert, clientCert: c.clientCert, clientKey: c.clientKey,
                             serverName: c.tlsServerName, skipVerify: c.tlsSkipVerify)
        }
        func broker(_ b: Endpoint) throws(BaoWrapError) -> Route {
            try Route(kind: .broker, endpoint: b, caFile: c.brokerCACert ?? c.caCert, clientCert: c.clientCert,
                      clientKey: c.clientKey, serverName: nil, skipVerify: c.tlsSkipVerify)
        }
        switch c.connect {
        case .direct: return (try direct(), nil)
        case .broker: return (try broker(c.broker!), nil)
        case .auto:
            guard let b = c.broker else { return (try direct(), nil) }
            return (try broker(b), c.address == nil ? nil : try direct())
        }
    }

    /// Logs in and resolves every secret. Per-variable failures are in the
    /// outcome's rows; a failure that stops everything (login, no route) is
    /// thrown.
    public func fetch() throws(BaoWrapError) -> Resolver.Outcome {
        let deadline = Deadline(after: config.timeout)
        let (primary, fallback) = try Startup.routes(config)
        let engine = HTTPEngine(userAgent: Version.userAgent)
        engine.interrupt = interrupt
        let client = OpenBaoClient(engine: engine, route: primary, fallback: fallback, namespace: config.namespace, log: log)
        self.client = client

        if let token = config.staticToken {
            try client.use(staticToken: token)
        } else {
            let jwt = try JWT.read(path: config.jwtFile, hardened: config.profile == .hardened, report: report)
            defer { jwt.wipe() }
            let problems = jwt.problems(expected: config.expected)
            if !problems.isEmpty {
                if config.profile == .hardened {
                    throw BaoWrapError(.authDenied, "JWT from \(config.jwtFile) will be refused: " + problems.joined(separator: "; "),
                                       hint: "check the projected token's audience and expiry, or the --expect-* settings")
                }
                for p in problems { log.warn("jwt_claims", p + " (development profile: logging in anyway)") }
            }
            _ = try client.login(authPath: config.authPath, role: config.role ?? "", jwt: jwt, deadline: deadline)
        }
        log.info("route", "using the \(client.route.kind.rawValue) route \(client.route.endpoint)",
                 [("route", .string(client.route.kind.rawValue))])

        let outcome = try Resolver(config: config, client: client, log: log, arena: arena).resolve(deadline: deadline)
        try checkMemoryLocks()
        return outcome
    }

    /// The spec's single `mlock_unavailable` warning, or a refusal.
    func checkMemoryLocks() throws(BaoWrapError) {
        guard report.refusedRegions > 0 else { return }
        if config.requireMlock {
            throw BaoWrapError(.system, "secret memory cannot be locked (RLIMIT_MEMLOCK too small) and --require-mlock is set",
                               hint: "raise the memlock limit or drop --require-mlock")
        }
        log.warn("mlock_unavailable", "secret memory could not be locked (RLIMIT_MEMLOCK); it may be swapped",
                 [("class", "mlock_unavailable"), ("regions", .int(report.refusedRegions))])
    }

    /// Revokes the token (best effort) and wipes every secret.
    public func finish() {
        if let client, client.hasToken, config.staticToken == nil, let e = client.revokeSelf() {
            log.debug("revoke_failed", "token revocation failed: \(e.rendered)", [("class", .string(e.errorClass.rawValue))])
        }
        arena.wipeAll()
        client = nil
    }
}
