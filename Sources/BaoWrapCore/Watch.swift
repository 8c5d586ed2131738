import CBaoWrap

/// What the watch compares for one location. Never a value: the KV v2
/// version, or for KV v1, which keeps no versions, a SHA-256 of the data.
public enum SecretState: Equatable, Sendable {
    case version(Int)
    case digest([UInt8])
    case missing

    static func digest(of body: ParsedBody, _ data: Int) -> SecretState {
        let t = body.doc.tape[data]
        var d = [UInt8](repeating: 0, count: 32)
        body.body.withUnsafeBytes { b in _ = bw_sha256(b.baseAddress! + Int(t.start), Int(t.end - t.start), &d) }
        return .digest(d)
    }
}

/// One unpinned location, with the state the running child got it in.
public struct WatchedSecret {
    let location: String
    /// The read that fetches it; KV v1 is checked by reading it.
    let read: OpenBaoClient.Read
    /// KV v2: MOUNT/metadata/PATH, checked for current_version.
    let metadataPath: String?
    var state: SecretState
}

/// `--watch`: while the child runs, keeps the token alive (renew-self, or a
/// login with the JWT file read again when renewal is refused) and checks
/// every unpinned secret against the state the child got, every interval
/// with jitter. A change restarts the child with fresh values, signals it,
/// or stops it and exits. A failed check never touches the child: it is
/// logged and retried with backoff. Between checks baowrap holds the token
/// (locked) and the states, nothing else: values are wiped after each
/// restart and connections are closed after each check.
public final class Watcher: SupervisedTask {
    let startup: Startup
    let workload: Workload
    let config: Config
    let log: Logger
    let interval: Duration
    private var watched: [WatchedSecret]
    private var checkAt: UInt64
    /// nil: the token does not expire, or is static (not baowrap's to renew).
    private var renewAt: UInt64?
    private var mustLogIn = false
    private var failures = 0

    /// nil without --watch or with nothing unpinned to watch.
    public init?(startup: Startup, workload: Workload, watched: [WatchedSecret]) {
        guard let interval = startup.config.watch else { return nil }
        guard !watched.isEmpty, startup.client != nil else {
            startup.log.info("watch_idle", "nothing to watch: no secret without a pinned version")
            return nil
        }
        self.startup = startup
        self.workload = workload
        config = startup.config
        log = startup.log
        self.interval = interval
        self.watched = watched
        checkAt = Deadline.now() + Watcher.jittered(interval, random: Double.random(in: 0..<1))
        renewAt = Watcher.renewal(startup.login)
        let action: String
        switch config.onChange {
        case .restart: action = "restart"
        case .exit: action = "exit"
        case .signal(let s): action = "signal:\(s)"
        }
        log.info("watching", "watching \(watched.count) secrets every \(DurationText.render(interval)); on change: \(action)",
                 [("count", .int(watched.count)), ("on_change", .string(action))])
    }

    public var dueInMilliseconds: Int {
        let next = min(checkAt, renewAt ?? .max)
        let now = Deadline.now()
        return next <= now ? 0 : Int(min((next - now) / 1_000_000 + 1, UInt64(Int32.max)))
    }

    public func run(_ supervisor: Supervisor) -> ExitStatus? {
        guard let client = startup.client else { return nil }
        // Signals reach the child while a check waits on the network, and
        // the child's exit ends the wait.
        client.engine.interrupt = supervisor
        let status = cycle(supervisor)
        client.engine.interrupt = nil
        client.engine.closeConnections()
        log.debug("watch_cycle", "check done; connections closed", [("failures", .int(failures))])
        return status
    }

    private func cycle(_ supervisor: Supervisor) -> ExitStatus? {
        let deadline = Deadline(after: config.timeout)
        do {
            if mustLogIn || renewAt.map({ Deadline.now() >= $0 }) == true { try keepToken(deadline) }
            guard Deadline.now() >= checkAt else { return nil }
            let observed = try check(deadline)
            let changed = watched.indices.filter { observed[$0] != watched[$0].state }
            let status = changed.isEmpty ? nil : try apply(changed, observed, supervisor, deadline)
            failures = 0
            checkAt = Deadline.now() + Watcher.jittered(interval, random: Double.random(in: 0..<1))
            return status
        } catch where error.errorClass == .interrupted {
            // The child exited; supervise() returns its status.
            return nil
        } catch {
            return failed(error, supervisor)
        }
    }

    /// Renews the token, or logs in again when renewal is refused or the
    /// lease would shrink towards the token's max TTL.
    private func keepToken(_ deadline: Deadline) throws(BaoWrapError) {
        guard let client = startup.client, config.staticToken == nil, let login = startup.login else {
            renewAt = nil
            return
        }
        if !mustLogIn && login.renewable {
            do {
                let renewed = try client.renewSelf(deadline: deadline)
                if renewed.leaseDuration * 2 >= login.leaseDuration {
                    renewAt = Watcher.renewal(renewed)
                    log.debug("token_renewed", "token renewed for \(renewed.leaseDuration)s", [("lease", .int(renewed.leaseDuration))])
                    return
                }
            } catch where error.errorClass == .authDenied {
                log.info("token_renewal_refused", "\(error.rendered); logging in again", [("class", .string(error.errorClass.rawValue))])
            }
        }
        mustLogIn = true
        try startup.authenticate(deadline: deadline)
        mustLogIn = false
        renewAt = Watcher.renewal(startup.login)
        log.info("logged_in", "logged in again with the JWT from \(config.jwtFile)")
    }

    /// The current state of every watched location.
    private func check(_ deadline: Deadline) throws(BaoWrapError) -> [SecretState] {
        guard let client = startup.client else { return watched.map(\.state) }
        var observed = watched.map(\.state)
        let byMetadata = watched.indices.filter { watched[$0].metadataPath != nil }
        let versions = try client.currentVersions(byMetadata.map { (watched[$0].metadataPath!, watched[$0].location) }, deadline: deadline)
        for (i, r) in zip(byMetadata, versions) { observed[i] = try r.get().map(SecretState.version) ?? .missing }
        let byValue = watched.indices.filter { watched[$0].metadataPath == nil }
        for (i, r) in zip(byValue, try client.read(byValue.map { watched[$0].read }, deadline: deadline)) {
            switch try r.get() {
            case .found(let body, let data, _):
                observed[i] = .digest(of: body, data)
                body.body.wipe()
            case .notFound, .deleted: observed[i] = .missing
            }
        }
        return observed
    }

    private func apply(_ changed: [Int], _ observed: [SecretState], _ supervisor: Supervisor,
                       _ deadline: Deadline) throws(BaoWrapError) -> ExitStatus? {
        // A stop signal arrived during the check: the workload is going away.
        guard !supervisor.stopping else { return nil }
        log.info("secret_changed", "\(changed.count) watched secret(s) changed", [("paths", .list(changed.map { log.path(watched[$0].location) }))])
        switch config.onChange {
        case .signal(let s):
            // A running process's environment cannot change: the child
            // re-reads whatever it reads on this signal.
            for i in watched.indices { watched[i].state = observed[i] }
            supervisor.forward(s)
            return nil
        case .exit:
            if let status = supervisor.pump() { return status }
            _ = supervisor.stop(with: config.stopSignal, timeout: config.stopTimeout)
            return .secretsChanged
        case .restart:
            return try restart(observed, supervisor, deadline)
        }
    }

    /// Fetches first, so a failed fetch leaves the running child alone;
    /// the old child stops only once the new environment is built. KV v2
    /// secrets are read at the versions the check saw.
    private func restart(_ observed: [SecretState], _ supervisor: Supervisor, _ deadline: Deadline) throws(BaoWrapError) -> ExitStatus? {
        var pins: [String: Int] = [:]
        for (w, s) in zip(watched, observed) where w.metadataPath != nil {
            if case .version(let v) = s { pins[w.location] = v }
        }
        defer { startup.arena.wipeAll() }
        let outcome = try startup.resolve(pins: pins, deadline: deadline)
        if var e = outcome.failures.first {
            if outcome.failures.count > 1 { e.message += " (and \(outcome.failures.count - 1) more)" }
            throw e
        }
        let cancelled = try workload.start(outcome.variables, unset: outcome.skippedNames, supervisor: supervisor, log: log) {
            // The child's own exit, or a stop request meanwhile, wins.
            if let status = supervisor.pump() { return status }
            let status = supervisor.stop(with: config.stopSignal, timeout: config.stopTimeout)
            return supervisor.stopping ? status : nil
        }
        if let cancelled { return cancelled }
        watched = outcome.watched
        log.info("restarted", "restarted the command with the new values: pid \(supervisor.child)", [("pid", .int(Int(supervisor.child)))])
        return nil
    }

    private func failed(_ error: BaoWrapError, _ supervisor: Supervisor) -> ExitStatus? {
        failures += 1
        // A dead token (expired, revoked) answers 403 everywhere.
        if error.errorClass == .permissionDenied { mustLogIn = true }
        if let limit = config.watchFailAfter, failures >= limit {
            log.error(error, event: "watch_failed")
            log.error(BaoWrapError(error.errorClass, "\(failures) watch checks failed in a row (--watch-fail-after); stopping the command"),
                      event: "watch_gave_up")
            if let status = supervisor.pump() { return status }
            _ = supervisor.stop(with: config.stopSignal, timeout: config.stopTimeout)
            return .wrapperFailure
        }
        let delay = Watcher.backoff(interval, failures: failures)
        let now = Deadline.now()
        checkAt = now + Watcher.jittered(delay, random: Double.random(in: 0..<1))
        if let r = renewAt, r <= now { renewAt = checkAt }
        log.warn("watch_failed", "\(error.rendered); the command keeps running, next try in about \(DurationText.render(delay))",
                 [("class", .string(error.errorClass.rawValue)), ("failures", .int(failures))])
        return nil
    }

    /// Nanoseconds from now to a point within ±10% of `d`, so pods started
    /// together do not check in lockstep. `random` is in [0, 1).
    static func jittered(_ d: Duration, random: Double) -> UInt64 {
        UInt64(Double(d.milliseconds) * (0.9 + 0.2 * random) * 1_000_000)
    }

    /// After `failures` failed checks in a row: the interval, doubling per
    /// failure up to 8 times it, but never past 5 minutes unless the
    /// interval itself is longer.
    static func backoff(_ interval: Duration, failures: Int) -> Duration {
        min(interval * (1 << min(max(failures - 1, 0), 3)), max(interval, .seconds(300)))
    }

    /// When to renew a lease: at two thirds of it, as OpenBao Agent does.
    static func renewal(_ login: OpenBaoClient.Login?) -> UInt64? {
        guard let lease = login?.leaseDuration, lease > 0 else { return nil }
        return Deadline.now() + UInt64(lease) * 666_666_667
    }
}
