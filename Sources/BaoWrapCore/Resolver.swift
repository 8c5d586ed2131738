/// One environment variable the workload will get.
public struct ResolvedVariable {
    public let name: String
    public let value: Secret
}

/// One line of `baowrap check`: where a variable comes from and whether it
/// resolved. Never holds a value.
public struct ResolutionRow {
    public let name: String
    /// The reference, with the path hashed unless paths may be shown.
    public let source: String
    public let version: Int?
    /// nil when the variable resolved (or was skipped with `skipped`).
    public let failure: BaoWrapError?
    public let skipped: Bool
}

/// Turns the configured references into values, or fails closed with a
/// precise reason per variable. Finds each mount's KV version once, reads
/// each distinct path once, all distinct paths concurrently, and extracts
/// keys straight from the locked response bodies into the arena.
public final class Resolver {
    let config: Config
    let client: OpenBaoClient
    let log: Logger
    let arena: SecretArena
    /// Mounts found during this run, by first path segment.
    private var mountCache: [String: OpenBaoClient.MountInfo] = [:]

    public init(config: Config, client: OpenBaoClient, log: Logger, arena: SecretArena) {
        self.config = config
        self.client = client
        self.log = log
        self.arena = arena
    }

    public struct Outcome {
        public var variables: [ResolvedVariable] = []
        public var rows: [ResolutionRow] = []
        /// Set when nothing could be resolved (no route, unusable JWT,
        /// login refused); every row then fails with this error.
        public var stoppedBy: BaoWrapError?
        /// Every unpinned location with the state the values were read at:
        /// what `--watch` compares.
        public var watched: [WatchedSecret] = []
        public var failures: [BaoWrapError] { rows.compactMap(\.failure) }
        /// Variables skipped with --on-missing skip: the child must not get them.
        public var skippedNames: Set<String> { Set(rows.filter(\.skipped).map(\.name)) }

        init() {}

        /// Every configured variable failing with `error`, so each one is
        /// reported by name, as when it fails on its own.
        init(stoppedBy error: BaoWrapError, config: Config) {
            stoppedBy = error
            rows = config.secrets.map { b in
                ResolutionRow(name: b.name, source: b.source(showPaths: config.showPaths), version: nil,
                              failure: error.with(variable: b.name), skipped: false)
            } + config.fromPaths.map { p in
                ResolutionRow(name: p.prefix + "*", source: p.source(showPaths: config.showPaths), version: nil,
                              failure: error.with(variable: p.prefix + "*"), skipped: false)
            }
        }
    }

    /// How a location is read: its API path and KV version.
    struct Plan {
        var apiPath: String
        var kvVersion: Int
        /// The mount was not identified: try v2, then v1.
        var probe: Bool
        /// KV v2: MOUNT/metadata/PATH, where the watch finds the current version.
        var metadataPath: String?

        static func v2(mount: Substring, path: Substring, probe: Bool) -> Plan {
            Plan(apiPath: "\(mount)/data/\(path)", kvVersion: 2, probe: probe, metadataPath: "\(mount)/metadata/\(path)")
        }
    }

    /// The distinct reads of a set of plans: a location with several keys is
    /// read once per distinct pinned version, and so is a secret written both
    /// ways (secret/app/db and secret/data/app/db).
    struct PlannedReads {
        var reads: [OpenBaoClient.Read] = []
        /// `readKey(location, version)` to its read.
        var index: [String: Int] = [:]
        var failures: [String: BaoWrapError] = [:]
    }

    static func readKey(_ location: String, _ version: Int?) -> String { "\(location)#\(version.map(String.init) ?? "")" }

    func plannedReads(_ plans: [String: Result<Plan, BaoWrapError>], pins: [String: Int]) -> PlannedReads {
        var out = PlannedReads()
        var byAPIPath: [String: Int] = [:]
        func add(_ location: String, _ version: Int?) {
            guard case .success(let p)? = plans[location] else { return }
            let k = Resolver.readKey(location, version)
            if version != nil && p.kvVersion == 1 && !p.probe {
                out.failures[k] = .config("#VERSION given for \(log.path(location)), which is on a KV v1 mount", hint: "only KV v2 keeps versions")
                return
            }
            guard out.index[k] == nil else { return }
            let version = version ?? pins[location]
            // A probe may still turn into a v1 read of its own location.
            let api = Resolver.readKey(p.apiPath, version) + (p.probe ? "?" + location : "")
            if let i = byAPIPath[api] {
                out.index[k] = i
                return
            }
            byAPIPath[api] = out.reads.count
            out.index[k] = out.reads.count
            out.reads.append(.init(apiPath: p.apiPath, version: version, kvVersion: p.kvVersion, location: location))
        }
        for b in config.secrets { add(b.ref.location, b.ref.version) }
        for p in config.fromPaths { add(p.location, nil) }
        return out
    }

    /// What makes two reads the same request.
    static func requestKey(_ r: OpenBaoClient.Read) -> String { "\(r.kvVersion):\(readKey(r.apiPath, r.version))" }

    /// `pins` gives unpinned locations a version to read: the watch re-reads
    /// exactly the versions its check saw.
    public func resolve(deadline: Deadline, pins: [String: Int] = [:]) throws(BaoWrapError) -> Outcome {
        let locations = uniqued(config.secrets.map(\.ref.location) + config.fromPaths.map(\.location))
        var answers: [String: Result<OpenBaoClient.ReadOutcome, BaoWrapError>] = [:]
        let plans = try plan(locations, pins: pins, deadline: deadline, answers: &answers)
        let planned = plannedReads(plans, pins: pins)
        var reads = planned.reads
        let unanswered = reads.filter { answers[Resolver.requestKey($0)] == nil }
        if !unanswered.isEmpty {
            for (r, o) in zip(unanswered, try client.read(unanswered, deadline: deadline)) { answers[Resolver.requestKey(r)] = o }
        }
        var outcomes = reads.map { answers[Resolver.requestKey($0)]! }
        // Guesses the plan did not keep are thrown away.
        let kept = Set(reads.map(Resolver.requestKey))
        for (k, answer) in answers where !kept.contains(k) {
            if case .success(.found(let body, _, _)) = answer { body.body.wipe() }
        }

        // Probed locations that were not found as v2 are tried as v1.
        var retryV1: [Int] = []
        for (i, r) in reads.enumerated() where plans[r.location].flatMap({ try? $0.get() })?.probe == true {
            switch outcomes[i] {
            case .success(.notFound): retryV1.append(i)
            case .failure(let e) where e.errorClass == .permissionDenied: retryV1.append(i)
            default: break
            }
        }
        if !retryV1.isEmpty {
            let v1Reads = retryV1.map { i -> OpenBaoClient.Read in
                let r = reads[i]
                return .init(apiPath: r.location, version: r.version, kvVersion: 1, location: r.location)
            }
            for (n, o) in try client.read(v1Reads, deadline: deadline).enumerated() {
                outcomes[retryV1[n]] = o
                reads[retryV1[n]] = v1Reads[n]
            }
        }

        var out = Outcome()
        func row(_ name: String, _ source: String, _ version: Int?, _ failure: BaoWrapError?, skipped: Bool = false) {
            out.rows.append(ResolutionRow(name: name, source: source, version: version, failure: failure, skipped: skipped))
        }
        func missing(_ name: String, _ source: String, _ e: BaoWrapError) {
            if config.onMissing == .skip && (e.errorClass == .notFound || e.errorClass == .versionDeleted) {
                log.warn("secret_skipped", "\(name) left unset: \(e.rendered)", [("var", .string(name)), ("class", .string(e.errorClass.rawValue))])
                row(name, source, nil, nil, skipped: true)
            } else {
                row(name, source, nil, e.with(variable: name))
            }
        }
        func outcome(_ location: String, _ version: Int?) -> Result<OpenBaoClient.ReadOutcome, BaoWrapError> {
            if let e = planned.failures[Resolver.readKey(location, version)] { return .failure(e) }
            if case .failure(let e)? = plans[location] { return .failure(e) }
            guard let i = planned.index[Resolver.readKey(location, version)] else { return .failure(.config("internal: no read planned")) }
            return outcomes[i]
        }
        func notFound(_ location: String, _ version: Int? = nil) -> BaoWrapError {
            if let version {
                return BaoWrapError(.notFound, "version \(version) of \(log.path(location)) does not exist", hint: "check the pinned version")
            }
            return BaoWrapError(.notFound, "secret \(log.path(location)) does not exist", hint: "check the path and the mount")
        }
        func deleted(_ location: String, _ version: Int?, _ destroyed: Bool) -> BaoWrapError {
            BaoWrapError(.versionDeleted, "version \(version.map(String.init) ?? "latest") of \(log.path(location)) is \(destroyed ? "destroyed" : "deleted")",
                         hint: "pin another version or undelete it")
        }

        for b in config.secrets {
            let source = b.source(showPaths: config.showPaths)
            switch outcome(b.ref.location, b.ref.version) {
            case .failure(let e): missing(b.name, source, e)
            case .success(.notFound): missing(b.name, source, notFound(b.ref.location, b.ref.version))
            case .success(.deleted(let destroyed, _)): missing(b.name, source, deleted(b.ref.location, b.ref.version, destroyed))
            case .success(.found(let body, let data, let version)):
                guard let v = body.doc.member(data, b.ref.key) else {
                    missing(b.name, source, BaoWrapError(.notFound, "secret \(log.path(b.ref.location)) has no key \"\(b.ref.key)\"",
                                                         hint: "keys present: \(body.doc.members(data).count)"))
                    continue
                }
                out.variables.append(ResolvedVariable(name: b.name, value: try body.doc.secret(v, in: arena)))
                row(b.name, source, version, nil)
            }
        }
        // An explicit --secret for a name wins over --from-path.
        let explicit = Set(config.secrets.map(\.name))
        var fromPathKeys: [String: (location: String, key: String)] = [:]
        for p in config.fromPaths {
            let source = p.source(showPaths: config.showPaths)
            let label = p.prefix + "*"
            switch outcome(p.location, nil) {
            case .failure(let e): missing(label, source, e)
            case .success(.notFound): missing(label, source, notFound(p.location))
            case .success(.deleted(let destroyed, _)): missing(label, source, deleted(p.location, nil, destroyed))
            case .success(.found(let body, let data, let version)):
                for m in body.doc.members(data) {
                    guard let key = body.doc.string(m.key) else { continue }
                    let name = p.variableName(forKey: key)
                    if explicit.contains(name) { continue }
                    if let problem = PathBinding.problem(name: name, key: key, location: log.path(p.location)) {
                        let shown = name.isEmpty ? label : name
                        row(shown, source, version, problem.with(variable: shown))
                        continue
                    }
                    if let other = fromPathKeys[name] {
                        let why = other.location == p.location
                            ? "keys \"\(other.key)\" and \"\(key)\" of \(log.path(p.location)) both become this name"
                            : "produced by two --from-path entries"
                        row(name, source, version, BaoWrapError(.config, why, variable: name,
                                                                hint: "rename a key, or give the entries different prefixes"))
                        continue
                    }
                    fromPathKeys[name] = (p.location, key)
                    out.variables.append(ResolvedVariable(name: name, value: try body.doc.secret(m.value, in: arena)))
                    row(name, source, version, nil)
                }
            }
        }
        for location in uniqued(config.secrets.filter { $0.ref.version == nil }.map(\.ref.location) + config.fromPaths.map(\.location)) {
            guard let i = planned.index[Resolver.readKey(location, nil)], case .success(let plan)? = plans[location] else { continue }
            let read = reads[i]
            let state: SecretState
            switch outcomes[i] {
            case .success(.found(let body, let data, let version)): state = read.kvVersion == 2 ? .version(version ?? 0) : .digest(of: body, data)
            case .success(.deleted(_, let version)): state = (version ?? read.version).map(SecretState.version) ?? .missing
            case .success(.notFound): state = .missing
            case .failure: continue
            }
            out.watched.append(WatchedSecret(location: location, read: .init(apiPath: read.apiPath, version: nil, kvVersion: read.kvVersion, location: location),
                                             metadataPath: read.kvVersion == 2 ? plan.metadataPath : nil, state: state))
        }
        // Every response body is wiped now that its values are in the arena.
        for case .success(.found(let body, _, _)) in outcomes { body.body.wipe() }
        return out
    }

    /// A location's plan when no lookup is needed: the path says
    /// `MOUNT/data/`, or its mount was looked up earlier in the run.
    func knownPlan(_ loc: String) -> Result<Plan, BaoWrapError>? {
        let first = loc.prefix { $0 != "/" }
        if SecretRef.isV2APIForm(loc) {
            return .success(.v2(mount: first, path: loc.dropFirst(first.count + 6), probe: false))
        }
        guard let m = mountCache[String(first)], loc.hasPrefix(m.path + "/") else { return nil }
        guard m.type == "kv" || m.type == "generic" else {
            return .failure(.config("\(log.path(loc)) is on a \(m.type) mount, not a KV secrets engine"))
        }
        let rest = loc.dropFirst(m.path.count + 1)
        // A v2 path already in the API form (nested mounts reach here) keeps its data/.
        return .success(m.version == 2 ? .v2(mount: Substring(m.path), path: rest.hasPrefix("data/") ? rest.dropFirst(5) : rest, probe: false)
                                       : Plan(apiPath: loc, kvVersion: 1, probe: false))
    }

    /// Decides, per location, the API path and KV version: from the path
    /// itself when it says `MOUNT/data/`, else from one mount lookup per
    /// first segment (cached for the run). While a lookup runs, its
    /// locations are already read as KV v2 on their first segment, the
    /// common case, and the reads a wrong guess calls for go out as soon as
    /// the lookups have answered: lookups cost no round trip of their own.
    /// Every answer goes to `answers`, by `requestKey`.
    func plan(_ locations: [String], pins: [String: Int], deadline: Deadline,
              answers: inout [String: Result<OpenBaoClient.ReadOutcome, BaoWrapError>]) throws(BaoWrapError) -> [String: Result<Plan, BaoWrapError>] {
        var plans: [String: Result<Plan, BaoWrapError>] = [:]
        var pending: [String] = []
        for loc in locations {
            if let known = knownPlan(loc) { plans[loc] = known } else { pending.append(loc) }
        }
        var lookupFailure: [String: BaoWrapError] = [:]
        var unknown: Set<String> = []
        func first(_ loc: String) -> String { String(loc.prefix { $0 != "/" }) }
        // The plans the lookups allow; what they leave open stays pending.
        func apply(_ representatives: [String], _ found: [Result<OpenBaoClient.MountInfo?, BaoWrapError>]) {
            for (loc, r) in zip(representatives, found) {
                let f = first(loc)
                unknown.remove(f)
                lookupFailure[f] = nil
                switch r {
                case .success(let info?): mountCache[f] = info
                case .success(nil): unknown.insert(f)
                case .failure(let e): lookupFailure[f] = e
                }
            }
            var next: [String] = []
            for loc in pending {
                let f = first(loc)
                if let e = lookupFailure[f] {
                    plans[loc] = .failure(e)
                } else if unknown.contains(f) {
                    plans[loc] = .success(.v2(mount: Substring(f), path: loc.dropFirst(f.count + 1), probe: true))
                } else if let known = knownPlan(loc) {
                    plans[loc] = known
                } else {
                    plans[loc] = nil
                    next.append(loc)
                }
            }
            // A location outside the cached mount gets its own lookup.
            for loc in next { mountCache.removeValue(forKey: first(loc)) }
            pending = next
        }
        // Up to two rounds: one lookup per first segment, then one for each
        // location the first answer did not cover (a nested mount).
        for round in 0..<2 where !pending.isEmpty {
            var representatives: [String] = []
            var seen: Set<String> = []
            for loc in pending where seen.insert(first(loc)).inserted { representatives.append(loc) }
            guard round == 0 else {
                apply(representatives, try client.mounts(for: representatives, deadline: deadline))
                continue
            }
            var guesses = plans
            for loc in pending { guesses[loc] = .success(.v2(mount: Substring(first(loc)), path: loc.dropFirst(first(loc).count + 1), probe: false)) }
            let guessed = plannedReads(guesses, pins: pins).reads
            let sent = Set(guessed.map(Resolver.requestKey))
            let round0 = pending
            let r = try client.mountsAndReads(representatives, guessed, deadline: deadline) { (found) throws(BaoWrapError) in
                pending = round0
                apply(representatives, found)
                return self.plannedReads(plans, pins: pins).reads.filter { !sent.contains(Resolver.requestKey($0)) }
            }
            for (read, answer) in zip(guessed, r.reads) + r.added { answers[Resolver.requestKey(read)] = answer }
        }
        for loc in pending where plans[loc] == nil {
            plans[loc] = .failure(BaoWrapError(.notFound, "no mount serves \(log.path(loc))"))
        }
        return plans
    }
}

func uniqued(_ items: [String]) -> [String] {
    var seen: Set<String> = []
    return items.filter { seen.insert($0).inserted }
}
