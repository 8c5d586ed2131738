/// A response body that parsed as JSON, kept together with the locked
/// buffer the document points into.
public struct ParsedBody {
    let body: LockedBuffer
    let doc: JSONDocument
}

/// What the server said when it did not say yes, classified by status first
/// (a proxy's HTML page or empty body is never fed to a JSON parser blindly).
struct APIFailure {
    let status: Int
    /// OpenBao's `errors`, each flattened to one line.
    let errors: [String]
    /// The body was not OpenBao's `{"errors":[...]}`: an nginx page, empty...
    let foreignBody: String?
    /// The `<title>` of an HTML body, which is where nginx says what went
    /// wrong ("400 No required SSL certificate was sent").
    let title: String?
    let location: String?

    init(status: Int, errors: [String] = [], foreignBody: String? = nil, title: String? = nil, location: String? = nil) {
        self.status = status
        self.errors = errors.map(APIFailure.flatten)
        self.foreignBody = foreignBody
        self.title = title
        self.location = location
    }

    init(_ r: HTTPResponse) {
        if let doc = r.jsonObject {
            self.init(status: r.status, errors: doc.member(doc.root, "errors").map(doc.strings) ?? [], location: r.location)
        } else {
            let title = r.body.withUnsafeBytes(APIFailure.htmlTitle)
            let what = r.body.isEmpty ? "empty body"
                : "non-JSON body (\(r.body.count) bytes\(r.contentType.map { ", " + $0 } ?? "")\(title.map { ": \"" + $0 + "\"" } ?? ""))"
            self.init(status: r.status, foreignBody: what, title: title, location: r.location)
        }
    }

    /// "HTTP 403: permission denied" / "HTTP 502 with non-JSON body (157 bytes, text/html: "502 Bad Gateway")".
    var summary: String {
        var s = "HTTP \(status)"
        if !errors.isEmpty { s += ": " + errors.joined(separator: "; ") }
        if let foreignBody { s += " with \(foreignBody)" }
        if let location, (300...399).contains(status) { s += ", redirect to \(location) not followed" }
        return s
    }

    /// OpenBao wraps most errors in go-multierror's layout
    /// ("1 error occurred:\n\t* permission denied\n\n"); a log line wants
    /// just "permission denied".
    static func flatten(_ error: String) -> String {
        let lines = error.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
        let items = lines.filter { $0.hasPrefix("\t* ") }.map { String($0.dropFirst(3)) }
        if let head = lines.first, head.hasSuffix("occurred:"), !items.isEmpty { return items.joined(separator: "; ").trimmingSpaces }
        return lines.map { String($0).trimmingSpaces }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// The text of the first `<title>` in the body's first 4 KiB, printable
    /// ASCII only and at most 120 characters.
    static func htmlTitle(_ body: UnsafeRawBufferPointer) -> String? {
        let head = Array(body.prefix(4096)).map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }
        func find(_ needle: String, from: Int) -> Int? {
            let n = Array(needle.utf8)
            guard head.count >= n.count, from <= head.count - n.count else { return nil }
            return (from...(head.count - n.count)).first { i in head[i..<(i + n.count)].elementsEqual(n) }
        }
        guard let open = find("<title>", from: 0), let close = find("</title>", from: open + 7) else { return nil }
        let text = body[(open + 7)..<close].map { $0 >= 0x20 && $0 < 0x7f ? $0 : 0x20 }
        let title = String(decoding: text.prefix(120), as: UTF8.self).trimmingSpaces
        return title.isEmpty ? nil : title
    }
}

extension HTTPResponse {
    /// The body as a JSON object; nil for a proxy's page, an empty body or
    /// anything else that is not one. The document points into `body`.
    var jsonObject: JSONDocument? {
        guard looksLikeJSON, let doc = try? body.withUnsafeBytes({ (b) throws(JSONDocument.Error) in try JSONDocument(parsing: b) }),
              doc.kind(doc.root) == .object else { return nil }
        return doc
    }
}

/// The OpenBao HTTP API as baowrap uses it: login, mount lookup, KV reads,
/// token revocation. Each endpoint builds an `HTTPRequest` and decodes the
/// answer; only `HTTPEngine` touches libcurl. Owns the client token, in
/// locked memory, and the route (direct or broker) requests take.
public final class OpenBaoClient {
    public let engine: HTTPEngine
    public private(set) var route: Route
    /// The direct route `--connect auto` falls back to when the broker
    /// cannot be connected to.
    private var fallback: Route?
    private let namespace: String?
    private let log: Logger
    /// "X-Vault-Token: <token>", NUL-terminated, in locked memory.
    private var tokenHeader: LockedBuffer?
    /// OpenBao's inline auth (2.4+): every request carries the login and is
    /// authenticated on its own; no token is minted. The login path's header
    /// line, and the parameters' lines, NUL-terminated, in locked memory.
    private var inlineAuth: (path: String, parameters: [LockedBuffer])?
    public var concurrency = 16

    public init(engine: HTTPEngine, route: Route, fallback: Route?, namespace: String?, log: Logger) {
        self.engine = engine
        self.route = route
        self.fallback = fallback
        self.namespace = namespace
        self.log = log
        engine.retried = { [log] request, result, attempt, delay in
            OpenBaoClient.logRetry(log, request, result, attempt: attempt, delay: delay)
        }
    }

    public var hasToken: Bool { tokenHeader != nil }

    /// Makes every later request log in by itself at auth/<authPath> with
    /// `role` and `jwt`.
    public func useInlineAuth(authPath: String, role: String, jwt: JWT) throws(BaoWrapError) {
        var roleText = ""
        JSONText.appendString(role, to: &roleText)
        let roleLine = try OpenBaoClient.inlineParameter("role") { (f) throws(BaoWrapError) in try f.append(roleText) }
        let jwtLine = try OpenBaoClient.inlineParameter("jwt") { (f) throws(BaoWrapError) in
            try f.append(byte: UInt8(ascii: "\""))
            try jwt.token.withUnsafeBytes { (b) throws(BaoWrapError) in _ = try f.append(b) }
            try f.append(byte: UInt8(ascii: "\""))
        }
        dropInlineAuth()
        inlineAuth = ("X-Vault-Inline-Auth-Path: auth/\(authPath)/login", [roleLine, jwtLine])
    }

    /// `X-Vault-Inline-Auth-Parameter-KEY: ` and the base64url of
    /// {"key":KEY,"value":VALUE}, VALUE being the JSON `value` appends; built
    /// in locked memory, as the JWT is a parameter.
    static func inlineParameter(_ key: String, value: (LockedBuffer) throws(BaoWrapError) -> Void) throws(BaoWrapError) -> LockedBuffer {
        let field = try LockedBuffer(capacity: 4096, limit: JWT.sizeLimit + 64)
        defer { field.wipe() }
        try field.append("{\"key\":\"\(key)\",\"value\":")
        try value(field)
        try field.append("}")
        let line = try LockedBuffer(capacity: field.count * 4 / 3 + 64)
        try line.append("X-Vault-Inline-Auth-Parameter-\(key): ")
        try field.withUnsafeBytes { (b) throws(BaoWrapError) in try Base64URL.encode(b) { (c) throws(BaoWrapError) in try line.append(byte: c) } }
        try line.append(byte: 0)
        return line
    }

    /// Back to token authentication; the parameters' lines are wiped.
    public func dropInlineAuth() {
        inlineAuth?.parameters.forEach { $0.wipe() }
        inlineAuth = nil
    }

    // MARK: requests

    private func request(_ method: HTTPRequest.Method, _ path: String, body: LockedBuffer? = nil, authenticated: Bool = true) -> HTTPRequest {
        var r = HTTPRequest(method, path, route: route, body: body)
        if let namespace { r.headers.append("X-Vault-Namespace: \(namespace)") }
        if authenticated, let inlineAuth {
            r.headers.append(inlineAuth.path)
            r.secretHeaders = inlineAuth.parameters.map { UnsafePointer($0.region.base.assumingMemoryBound(to: CChar.self)) }
        } else if authenticated, let tokenHeader {
            r.secretHeaders = [UnsafePointer(tokenHeader.region.base.assumingMemoryBound(to: CChar.self))]
        }
        return r
    }

    /// One debug line per attempt that will be tried again, so a slow start
    /// can be explained: a leader election's 307s and 500s, a sealed node's
    /// 503s, a load balancer closing TLS. Secret paths are hashed as in
    /// errors; login paths are not secret.
    static func logRetry(_ log: Logger, _ request: HTTPRequest, _ result: AttemptResult, attempt: Int, delay: Int) {
        log.debug("retry", {
            let api = String(request.path.dropFirst(4).prefix { $0 != "?" })
            let shown = api.hasPrefix("auth/") ? api : log.path(api)
            let what: String
            switch result {
            case .failure(let f): what = f.message
            case .response(let r): what = APIFailure(r).summary.substituting(api, with: shown)
            }
            return "\(request.method.rawValue) \(shown): attempt \(attempt): \(what); trying again in \(delay) ms"
        }(), {
            var fields: [(String, LogValue)] = [("attempt", .int(attempt)), ("delay_ms", .int(delay))]
            switch result {
            case .failure(let f): fields.append(("class", .string(f.errorClass.rawValue)))
            case .response(let r): fields.append(("status", .int(r.status)))
            }
            return fields
        }())
    }

    /// How long a KV v2 version that the answering node has not seen yet is
    /// asked for again. OpenBao standbys answer reads from their own copy of
    /// Raft, a heartbeat behind the active node (40–100 ms measured with
    /// performance_multiplier 1; the default 5 makes heartbeats 5 times
    /// slower), so a version written just before the start, or just seen by
    /// a watch on another node, may answer 404 there. A version that does
    /// not exist at all fails this much later.
    public static let unseenVersionWait = Duration.seconds(2)

    /// Sends requests and retries what the policy allows inside `deadline`
    /// (nothing under inline auth: its caller falls back to a login, which
    /// retries). A request marked `pinnedVersion` reads one KV v2 version,
    /// and an "unseen" 404 is retried for it too, for `unseenVersionWait`.
    /// In auto mode, the first request that finds the broker unreachable
    /// switches every later request to the direct route, once.
    func send(_ requests: [HTTPRequest], deadline: Deadline,
              followUp: HTTPEngine.FollowUp? = nil) throws(BaoWrapError) -> [HTTPResult] {
        let probing = fallback != nil
        let retrying = inlineAuth == nil
        let versionWait = Deadline(after: OpenBaoClient.unseenVersionWait)
        var results = try engine.run(requests, concurrency: concurrency, deadline: deadline, retry: { request, r in
            guard retrying else { return false }
            switch r {
            case .failure(let f):
                // While probing the broker, a refused connection is an answer.
                if probing && f.neverConnected { return false }
                return RetryPolicy.isRetryable(f)
            case .response(let resp) where resp.status == 404:
                return request.pinnedVersion && !versionWait.hasPassed && OpenBaoClient.isUnseenVersion(resp)
            case .response(let resp):
                return RetryPolicy.isRetryable(status: resp.status)
            }
        }, followUp: followUp)
        if let direct = fallback {
            let unreachable = results.contains { if case .failure(let f) = $0.result { return f.neverConnected } else { return false } }
            let answered = results.contains { if case .response = $0.result { return true } else { return false } }
            if unreachable && !answered {
                if case .failure(let f) = results.first(where: { if case .failure = $0.result { return true } else { return false } })?.result {
                    log.warn("broker_unreachable", "broker \(route.endpoint) cannot be connected to (\(f.message)); using the direct route",
                             [("route", "direct")])
                }
                route = direct
                fallback = nil
                let moved = requests.map { r -> HTTPRequest in
                    var m = r
                    m.route = direct
                    return m
                }
                results = try send(moved, deadline: deadline, followUp: followUp)
            } else if answered {
                // The broker answered: auto never falls back after that.
                fallback = nil
            }
        }
        return results
    }

    private func one(_ r: HTTPRequest, deadline: Deadline) throws(BaoWrapError) -> HTTPResult {
        try send([r], deadline: deadline)[0]
    }

    // MARK: decoding

    enum Context { case login, read, mount, revoke }

    /// The class of a non-2xx answer in a given context.
    static func errorClass(_ f: APIFailure, _ context: Context) -> ErrorClass {
        // A 4xx that is not OpenBao's JSON comes from a proxy in front of it;
        // it says nothing about roles or policies. nginx answers a missing
        // or refused client certificate with a 400 page after the handshake.
        if f.foreignBody != nil && (400...499).contains(f.status) && f.status != 429 {
            return f.title?.asciiLowercased.includes("ssl certificate") == true ? .tls : .badResponse
        }
        switch (f.status, context) {
        case (300...399, _): return .connect
        // jwt auth answers 400 for a wrong audience or subject, kubernetes
        // auth 403 for a wrong service account.
        case (400, .login), (401, .login), (403, .login): return .authDenied
        case (401, _), (403, _): return .permissionDenied
        case (404, .login): return .config
        case (404, _): return .notFound
        case (429, _): return .rateLimited
        case (503, _): return .sealed
        case (502, _), (504, _): return .connect
        case (500, _) where f.errors.contains(where: { $0.includes("active cluster node not found") }): return .connect
        default: return .badResponse
        }
    }

    /// A transport failure or a non-2xx answer as a `BaoWrapError`.
    /// `hiding` lists the raw paths of the request: OpenBao quotes them in
    /// some errors (rate limits, preflight checks), and logs show them only
    /// as a hash unless --log-paths.
    func failure(_ result: HTTPResult, _ context: Context, what: String, hiding paths: [String] = []) -> BaoWrapError {
        let attempts = result.attempts == 1 ? "1 attempt" : "\(result.attempts) attempts"
        switch result.result {
        case .failure(let f):
            var e = BaoWrapError(f.errorClass, "\(what): \(route.kind.rawValue) route \(route.endpoint): \(f.message)")
            if result.deadlinePassed && f.errorClass != .tls && result.attempts > 0 { e.hint = "gave up after \(attempts) within --timeout" }
            if f.errorClass == .tls { e.hint = "check --ca-cert, --tls-server-name and the client certificate" }
            return e
        case .response(let r):
            let f = APIFailure(r)
            let cls = OpenBaoClient.errorClass(f, context)
            var summary = f.summary
            if let label = paths.first.map(log.path), !log.showPaths {
                for p in paths.sorted(by: { $0.utf8.count > $1.utf8.count }) { summary = summary.substituting(p, with: label) }
            }
            var e = BaoWrapError(cls, "\(what): \(summary)")
            switch cls {
            case .permissionDenied where context == .read:
                e.hint = "the token's policies must grant read on this path (KV v2: MOUNT/data/PATH)"
            case .tls:
                e.hint = "the server wants a client certificate it trusts: check --client-cert and --client-key"
            default:
                if result.deadlinePassed { e.hint = "still failing after \(attempts) within --timeout" }
            }
            return e
        }
    }

    /// The 2xx body as JSON, or a `bad_response` error.
    func parsed(_ r: HTTPResponse, what: String) throws(BaoWrapError) -> ParsedBody {
        do throws(JSONDocument.Error) {
            let doc = try r.body.withUnsafeBytes { (b) throws(JSONDocument.Error) in try JSONDocument(parsing: b) }
            guard doc.kind(doc.root) == .object else { throw JSONDocument.Error(offset: 0, reason: "not a JSON object") }
            return ParsedBody(body: r.body, doc: doc)
        } catch {
            r.body.wipe()
            throw BaoWrapError(.badResponse, "\(what): HTTP \(r.status) answer is not OpenBao JSON (\(error.reason) at byte \(error.offset)\(r.contentType.map { ", " + $0 } ?? ""))",
                               hint: "is --addr/--broker pointing at OpenBao's API?")
        }
    }

    // MARK: endpoints

    public struct Login {
        /// Seconds; 0 for a token that does not expire.
        public let leaseDuration: Int
        public let renewable: Bool

        init(_ p: ParsedBody) {
            leaseDuration = p.doc.path("auth", "lease_duration").flatMap(p.doc.int) ?? 0
            renewable = p.doc.path("auth", "renewable").flatMap(p.doc.bool) ?? false
        }
    }

    /// POST auth/<path>/login with `{"role":..,"jwt":..}`; keeps the token.
    public func login(authPath: String, role: String, jwt: JWT, deadline: Deadline) throws(BaoWrapError) -> Login {
        let body = try LockedBuffer(capacity: jwt.token.count + role.utf8.count + 64)
        var prefix = "{\"role\":"
        JSONText.appendString(role, to: &prefix)
        try body.append(prefix + ",\"jwt\":\"")
        try jwt.token.withUnsafeBytes { (b) throws(BaoWrapError) in _ = try body.append(b) }
        try body.append("\"}")
        defer { body.wipe() }
        let what = "login at auth/\(authPath) with role \(role)"
        let result = try one(request(.post, "/v1/auth/\(URLPath.escape(authPath))/login", body: body, authenticated: false), deadline: deadline)
        guard case .response(let r) = result.result, (200...299).contains(r.status) else {
            var e = failure(result, .login, what: what)
            if e.errorClass == .authDenied {
                e.hint = "check that role \(role) binds this ServiceAccount (name, namespace) and the token's audience"
            } else if e.errorClass == .config {
                e.hint = "no auth method is mounted at auth/\(authPath); set --auth-path"
            }
            throw e
        }
        let p = try parsed(r, what: what)
        defer { p.body.wipe() }
        guard let tok = p.doc.path("auth", "client_token"), p.doc.kind(tok) == .string else {
            throw BaoWrapError(.badResponse, "\(what): the answer has no auth.client_token")
        }
        let t = p.doc.tape[tok]
        try p.body.withUnsafeBytes { (b) throws(BaoWrapError) in
            try useToken(UnsafeRawBufferPointer(rebasing: b[Int(t.start)..<Int(t.end)]))
        }
        return Login(p)
    }

    /// POST auth/token/renew-self: a longer lease for the token. OpenBao
    /// re-runs the login's checks (kubernetes auth: a TokenReview of the
    /// JWT it logged in with), so a refusal means: log in again.
    public func renewSelf(deadline: Deadline) throws(BaoWrapError) -> Login {
        let result = try one(request(.post, "/v1/auth/token/renew-self"), deadline: deadline)
        guard case .response(let r) = result.result, (200...299).contains(r.status) else {
            let e = failure(result, .login, what: "token renewal")
            if case .response(let r) = result.result { r.body.wipe() }
            throw e
        }
        let p = try parsed(r, what: "token renewal")
        defer { p.body.wipe() }
        return Login(p)
    }

    /// GET MOUNT/metadata/PATH for each KV v2 location the watch follows:
    /// its current version, or nil when the secret does not exist. Never
    /// reads a value.
    public func currentVersions(_ paths: [(metadataPath: String, location: String)],
                                deadline: Deadline) throws(BaoWrapError) -> [Result<Int?, BaoWrapError>] {
        let results = try send(paths.map { request(.get, "/v1/\(URLPath.escape($0.metadataPath))") }, deadline: deadline)
        return zip(paths, results).map { path, result in
            let what = "version check of \(log.path(path.location))"
            guard case .response(let r) = result.result, (200...299).contains(r.status) || r.status == 404 else {
                var e = failure(result, .read, what: what, hiding: [path.location, path.metadataPath])
                if e.errorClass == .permissionDenied { e.hint = "the watch needs read on MOUNT/metadata/PATH too" }
                if case .response(let r) = result.result { r.body.wipe() }
                return .failure(e)
            }
            defer { r.body.wipe() }
            // Only OpenBao's own 404 ({"errors":[]}) says the secret is gone.
            if r.status == 404 {
                let f = APIFailure(r)
                return f.foreignBody == nil ? .success(nil) : .failure(BaoWrapError(.badResponse, "\(what): \(f.summary)"))
            }
            do throws(BaoWrapError) {
                let p = try parsed(r, what: what)
                guard let v = p.doc.path("data", "current_version").flatMap(p.doc.int) else {
                    throw BaoWrapError(.badResponse, "\(what): the answer has no data.current_version")
                }
                return .success(v)
            } catch {
                return .failure(error)
            }
        }
    }

    /// Uses a static token (BAOWRAP_TOKEN, development only) instead of a login.
    public func use(staticToken entry: EnvironmentEntry) throws(BaoWrapError) {
        try useToken(entry.valueBytes)
    }

    /// Builds the token's header line in locked memory; every later
    /// request links it into curl's header list in place.
    private func useToken(_ token: UnsafeRawBufferPointer) throws(BaoWrapError) {
        let header = try LockedBuffer(capacity: 256)
        try header.append("X-Vault-Token: ")
        _ = try header.append(token)
        try header.append(byte: 0)
        tokenHeader = header
    }

    public struct MountInfo: Equatable {
        /// Mount path without a trailing slash, e.g. "secret".
        public let path: String
        public let type: String
        /// KV version: 1 or 2.
        public let version: Int
    }

    /// GET sys/internal/ui/mounts/<path> for each location: the mount that
    /// serves it and its KV version. nil where the server would not say (403
    /// for narrow policies, 404 without the endpoint); errors otherwise.
    public func mounts(for locations: [String], deadline: Deadline) throws(BaoWrapError) -> [Result<MountInfo?, BaoWrapError>] {
        try mountsAndReads(locations, [], deadline: deadline).mounts
    }

    /// Mount lookups and KV reads sent together, concurrently: the resolver
    /// reads what it can guess while the lookups confirm the guess. When the
    /// last lookup has answered, `then` gets every answer and may add reads
    /// to the same run (where a guess was wrong), so those need not wait for
    /// the slowest of the guessed reads; they come back in `added`.
    public func mountsAndReads(_ locations: [String], _ reads: [Read], deadline: Deadline,
                               then: (([Result<MountInfo?, BaoWrapError>]) throws(BaoWrapError) -> [Read])? = nil)
        throws(BaoWrapError) -> (mounts: [Result<MountInfo?, BaoWrapError>], reads: [Result<ReadOutcome, BaoWrapError>],
                                 added: [(Read, Result<ReadOutcome, BaoWrapError>)]) {
        let lookups = locations.count
        var mounts: [Result<MountInfo?, BaoWrapError>] = []
        var added: [Read] = []
        let results = try send(locations.map(mountRequest) + reads.map(readRequest), deadline: deadline) { (finished, results) throws(BaoWrapError) in
            // Once a run (a broker fallback starts another): at the last lookup's answer.
            guard finished < lookups, results[0..<lookups].allSatisfy({ $0 != nil }) else { return [] }
            mounts = zip(locations, results[0..<lookups]).map { self.decodeMount($0, $1!) }
            added = try then?(mounts) ?? []
            return added.map(self.readRequest)
        }
        let answers = zip(reads + added, results.dropFirst(lookups)).map(decodeRead)
        return (mounts, Array(answers.prefix(reads.count)), Array(zip(added, answers.dropFirst(reads.count))))
    }

    private func mountRequest(_ location: String) -> HTTPRequest {
        request(.get, "/v1/sys/internal/ui/mounts/\(URLPath.escape(location))")
    }

    private func decodeMount(_ location: String, _ result: HTTPResult) -> Result<MountInfo?, BaoWrapError> {
        let what = "mount lookup for \(log.path(location))"
        guard case .response(let r) = result.result else { return .failure(failure(result, .mount, what: what, hiding: [location])) }
        defer { r.body.wipe() }
        if r.status == 403 || r.status == 404 || r.status == 405 { return .success(nil) }
        guard (200...299).contains(r.status) else { return .failure(failure(result, .mount, what: what, hiding: [location])) }
        do throws(BaoWrapError) {
            let p = try parsed(r, what: what)
            let doc = p.doc
            guard let data = doc.member(doc.root, "data"), let path = doc.member(data, "path").flatMap(doc.string) else {
                return .success(nil)
            }
            let type = doc.member(data, "type").flatMap(doc.string) ?? ""
            let versionText = doc.path("data", "options", "version").flatMap(doc.string) ?? "1"
            var mount = path
            while mount.hasSuffix("/") { mount.removeLast() }
            return .success(MountInfo(path: mount, type: type, version: versionText == "2" ? 2 : 1))
        } catch {
            return .failure(error)
        }
    }

    /// One KV read as the resolver plans it.
    public struct Read: Hashable {
        public let apiPath: String
        public let version: Int?
        public let kvVersion: Int
        /// The user's location, for messages.
        public let location: String
    }

    public enum ReadOutcome {
        /// The secret's data object (`.data.data` for v2, `.data` for v1)
        /// and its version (v2).
        case found(ParsedBody, data: Int, version: Int?)
        case notFound
        /// A v2 version that was deleted or destroyed; its number when the
        /// answer says.
        case deleted(destroyed: Bool, version: Int?)
    }

    /// A KV v2 404 without the version's metadata: this node has no such
    /// version (yet). A deleted or destroyed version answers 404 with it.
    static func isUnseenVersion(_ r: HTTPResponse) -> Bool {
        guard let doc = r.jsonObject else { return false }
        return doc.path("data", "metadata") == nil
    }

    /// Reads, concurrently. A pinned KV v2 version that the answering
    /// standby has not seen yet is asked for again (`unseenVersionWait`), so
    /// one written just before the start, or the one a watch just saw on
    /// another node, is not reported missing.
    public func read(_ reads: [Read], deadline: Deadline) throws(BaoWrapError) -> [Result<ReadOutcome, BaoWrapError>] {
        try mountsAndReads([], reads, deadline: deadline).reads
    }

    private func readRequest(_ r: Read) -> HTTPRequest {
        var q = request(.get, "/v1/\(URLPath.escape(r.apiPath))" + (r.version.map { "?version=\($0)" } ?? ""))
        q.pinnedVersion = r.version != nil && r.kvVersion == 2
        return q
    }

    private func decodeRead(_ read: Read, _ result: HTTPResult) -> Result<ReadOutcome, BaoWrapError> {
        let what = "read of \(log.path(read.location))"
        guard case .response(let r) = result.result else { return .failure(failure(result, .read, what: what, hiding: [read.location, read.apiPath])) }
        if r.status == 404 {
            defer { r.body.wipe() }
            // A deleted or destroyed v2 version answers 404 with its metadata.
            if read.kvVersion == 2, r.looksLikeJSON,
               let p = try? parsed(r, what: what), let meta = p.doc.path("data", "metadata"), p.doc.kind(meta) == .object {
                let destroyed = p.doc.member(meta, "destroyed").flatMap(p.doc.bool) ?? false
                let deletion = p.doc.member(meta, "deletion_time").flatMap(p.doc.string) ?? ""
                if destroyed || !deletion.isEmpty {
                    return .success(.deleted(destroyed: destroyed, version: p.doc.member(meta, "version").flatMap(p.doc.int)))
                }
            }
            let f = APIFailure(r)
            // An OpenBao 404 carries {"errors":[]}; a proxy's 404 page means a wrong prefix.
            if f.foreignBody != nil && !r.body.isEmpty {
                return .failure(BaoWrapError(.badResponse, "\(what): \(f.summary)", hint: "is the broker's path prefix right?"))
            }
            return .success(.notFound)
        }
        guard (200...299).contains(r.status) else {
            defer { r.body.wipe() }
            return .failure(failure(result, .read, what: what, hiding: [read.location, read.apiPath]))
        }
        do throws(BaoWrapError) {
            let p = try parsed(r, what: what)
            let doc = p.doc
            let data: Int?
            var version: Int? = nil
            if read.kvVersion == 2 {
                data = doc.path("data", "data")
                version = doc.path("data", "metadata", "version").flatMap(doc.int)
            } else {
                data = doc.member(doc.root, "data")
            }
            guard let data else {
                p.body.wipe()
                return .failure(BaoWrapError(.badResponse, "\(what): the answer has no data"))
            }
            if doc.kind(data) == .null {
                p.body.wipe()
                return .success(.deleted(destroyed: false, version: version))
            }
            guard doc.kind(data) == .object else {
                p.body.wipe()
                return .failure(BaoWrapError(.badResponse, "\(what): the secret's data is not an object"))
            }
            return .success(.found(p, data: data, version: version))
        } catch {
            return .failure(error)
        }
    }

    /// POST auth/token/revoke-self, best effort: a failure is returned for a
    /// debug line, never an error of the run. Forgets the token either way.
    @discardableResult
    public func revokeSelf(timeout: Duration = .seconds(2)) -> BaoWrapError? {
        guard tokenHeader != nil else { return nil }
        defer {
            tokenHeader?.wipe()
            tokenHeader = nil
        }
        let deadline = Deadline(after: timeout)
        do {
            let result = try one(request(.post, "/v1/auth/token/revoke-self"), deadline: deadline)
            if case .response(let r) = result.result, (200...299).contains(r.status) {
                r.body.wipe()
                return nil
            }
            // Decoded before the wipe, so the line can quote OpenBao's reason.
            let e = failure(result, .revoke, what: "token revocation")
            if case .response(let r) = result.result { r.body.wipe() }
            return e
        } catch {
            return error
        }
    }
}
