import CBaoWrap

/// Everything between a validated configuration and a set of resolved
/// variables: the route, the login, the resolution, the memory-lock
/// verdict. Holds the client so the token can be revoked after the spawn.
public final class Startup {
    public let config: Config
    public let log: Logger
    public let arena = SecretArena()
    public private(set) var client: OpenBaoClient?
    /// The lease of the token in use; nil for a static token.
    public private(set) var login: OpenBaoClient.Login?
    let interrupt: (any InterruptSource)?
    /// Kept for the run, so refetches reuse its mount lookups.
    private var resolver: Resolver?

    public init(config: Config, log: Logger, interrupt: (any InterruptSource)?) {
        self.config = config
        self.log = log
        self.interrupt = interrupt
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
    /// outcome's rows; a failure that stops everything (no route, unusable
    /// JWT, login refused) fails every row and sets `stoppedBy`. Only a
    /// signal or a system failure is thrown.
    public func fetch() throws(BaoWrapError) -> Resolver.Outcome {
        // Known before the first secret byte is read, so --require-mlock
        // refuses without having put the JWT in unlocked memory.
        try MemoryLocks.probe()
        try checkMemoryLocks()
        let deadline = Deadline(after: config.timeout)
        let client: OpenBaoClient
        let jwt: JWT?
        do throws(BaoWrapError) {
            client = try connect()
            jwt = try credentials(client)
        } catch where error.errorClass != .interrupted {
            return Resolver.Outcome(stoppedBy: error, config: config)
        }
        defer { jwt?.wipe() }
        if let jwt {
            if Startup.inlineAuthFits(config), let outcome = try fetchInline(client, jwt, deadline: deadline) { return outcome }
            do throws(BaoWrapError) {
                login = try client.login(authPath: config.authPath, role: config.role ?? "", jwt: jwt, deadline: deadline)
            } catch where error.errorClass != .interrupted {
                return Resolver.Outcome(stoppedBy: error, config: config)
            }
        }
        logRoute(client)
        return try resolve(pins: [:], deadline: deadline)
    }

    /// Inline auth fits a start that is one read of a path that needs no
    /// mount lookup (`MOUNT/data/PATH`; under inline auth OpenBao refuses
    /// sys/internal/ui/mounts) and keeps no token (no --watch, no static
    /// token). Each inline request is a login (a TokenReview), so several
    /// paths stay with one login and reads over its token.
    static func inlineAuthFits(_ c: Config) -> Bool {
        guard c.watch == nil, c.staticToken == nil else { return false }
        let locations = uniqued(c.secrets.map(\.ref.location) + c.fromPaths.map(\.location))
        let versions = Set(c.secrets.map(\.ref.version) + c.fromPaths.map { _ in nil })
        return locations.count == 1 && SecretRef.isV2APIForm(locations[0]) && versions.count == 1
    }

    /// The login and the read as one request (OpenBao's inline auth): one
    /// round trip less, and no token is minted, so none is left to revoke.
    /// Anything short of a full success returns nil and the start goes the
    /// usual way, a login then the read, which retries and explains each
    /// failure as always.
    private func fetchInline(_ client: OpenBaoClient, _ jwt: JWT, deadline: Deadline) throws(BaoWrapError) -> Resolver.Outcome? {
        try client.useInlineAuth(authPath: config.authPath, role: config.role ?? "", jwt: jwt)
        defer { client.dropInlineAuth() }
        let outcome = try resolve(pins: [:], deadline: deadline)
        if outcome.failures.isEmpty {
            logRoute(client)
            log.debug("inline_auth", "logged in and read in one request (inline auth); no token to revoke")
            return outcome
        }
        arena.wipeAll()
        resolver = nil
        log.debug("inline_auth_fallback", "inline auth did not succeed (\(outcome.failures[0].errorClass.rawValue)); logging in",
                  [("class", .string(outcome.failures[0].errorClass.rawValue))])
        return nil
    }

    private func logRoute(_ client: OpenBaoClient) {
        log.info("route", "using the \(client.route.kind.rawValue) route \(client.route.endpoint)",
                 [("route", .string(client.route.kind.rawValue))])
    }

    /// Resolves every secret again with the token in hand (the watch's
    /// restart), reading unpinned locations at `pins`' versions.
    public func resolve(pins: [String: Int], deadline: Deadline) throws(BaoWrapError) -> Resolver.Outcome {
        guard let client else { throw BaoWrapError(.system, "no OpenBao client") }
        let r = resolver ?? Resolver(config: config, client: client, log: log, arena: arena)
        resolver = r
        let outcome = try r.resolve(deadline: deadline, pins: pins)
        try checkMemoryLocks()
        log.debug("secret_memory", "secret memory regions: \(MemoryLocks.regions), memfd_secret: \(MemoryLocks.secretMemoryRegions), unlocked: \(MemoryLocks.refusedRegions)",
                  [("regions", .int(MemoryLocks.regions)), ("memfd_secret", .int(MemoryLocks.secretMemoryRegions)),
                   ("unlocked", .int(MemoryLocks.refusedRegions))])
        return outcome
    }

    /// The HTTP engine and the client, on the route requests start on.
    private func connect() throws(BaoWrapError) -> OpenBaoClient {
        let (primary, fallback) = try Startup.routes(config)
        let engine = try HTTPEngine(userAgent: Version.userAgent)
        engine.interrupt = interrupt
        let client = OpenBaoClient(engine: engine, route: primary, fallback: fallback, namespace: config.namespace, log: log)
        self.client = client
        return client
    }

    /// The static token, put to use (nil), or the JWT to log in with.
    private func credentials(_ client: OpenBaoClient) throws(BaoWrapError) -> JWT? {
        if let token = config.staticToken {
            try client.use(staticToken: token)
            // The locked copy is the only one now: /proc/PID/environ and the
            // initial stack no longer show the token.
            token.wipeValue()
            return nil
        }
        return try readJWT()
    }

    /// The JWT from its file, read now, after the local claim checks.
    private func readJWT() throws(BaoWrapError) -> JWT {
        let jwt = try JWT.read(path: config.jwtFile, hardened: config.profile == .hardened)
        do {
            try checkClaims(jwt)
        } catch {
            jwt.wipe()
            throw error
        }
        return jwt
    }

    /// Logs in with the JWT read from its file now: when the watch's token
    /// can no longer be renewed (the kubelet rotates the file long before the
    /// old JWT expires).
    public func authenticate(deadline: Deadline) throws(BaoWrapError) {
        guard let client else { throw BaoWrapError(.system, "no OpenBao client") }
        let jwt = try readJWT()
        defer { jwt.wipe() }
        login = try client.login(authPath: config.authPath, role: config.role ?? "", jwt: jwt, deadline: deadline)
    }

    /// The local JWT diagnostics, before any network call: refusals in the
    /// hardened profile, one warning per claim in development.
    func checkClaims(_ jwt: JWT) throws(BaoWrapError) {
        let problems = jwt.problems(expected: config.expected)
        guard !problems.isEmpty else { return }
        if config.profile == .hardened {
            throw BaoWrapError(.authDenied, "JWT from \(config.jwtFile) will be refused: " + problems.map(\.message).joined(separator: "; "),
                               hint: "check the projected token's audience and expiry, or the --expect-* settings")
        }
        for p in problems {
            log.warn("jwt_claims", p.message + " (development profile: logging in anyway)",
                     [("class", .string(ErrorClass.authDenied.rawValue)), ("claim", .string(p.claim))])
        }
    }

    private var warnedAboutLocks = false

    /// The spec's single `mlock_unavailable` warning, or a refusal.
    func checkMemoryLocks() throws(BaoWrapError) {
        guard MemoryLocks.refusedRegions > 0, !warnedAboutLocks else { return }
        if config.requireMlock {
            throw BaoWrapError(.system, "secret memory cannot be locked (RLIMIT_MEMLOCK too small) and --require-mlock is set",
                               hint: "raise the memlock limit or drop --require-mlock")
        }
        warnedAboutLocks = true
        log.warn("mlock_unavailable", "secret memory could not be locked (RLIMIT_MEMLOCK); it may be swapped",
                 [("class", "mlock_unavailable")])
    }

    /// Wipes every secret value and closes the connections, keeping the
    /// token: what the watch holds between checks.
    public func wipeValues() {
        arena.wipeAll()
        client?.engine.closeConnections()
    }

    /// Wipes every secret and revokes the token (best effort).
    public func finish() {
        // Values first: the revocation may take its whole timeout.
        arena.wipeAll()
        if let client, client.hasToken, config.staticToken == nil, let e = client.revokeSelf() {
            log.debug("revoke_failed", "token revocation failed: \(e.rendered)", [("class", .string(e.errorClass.rawValue))])
        }
        // Releasing the client closes libcurl's connections: their buffers
        // go back through the wiping allocator now, not at exit.
        resolver = nil
        client = nil
        let wiped = Int(bw_wiped_blocks())
        log.debug("wiped", "secret buffers wiped; \(wiped) libcurl/OpenSSL heap blocks wiped on free", [("heap_blocks", .int(wiped))])
    }
}
