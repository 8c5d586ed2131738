import CBaoWrap
import Glibc

/// How to reach one HTTPS endpoint: the address, the trust anchors and the
/// client identity. `direct` is OpenBao itself, `broker` the in-cluster
/// reverse proxy; both speak the OpenBao API (the broker under its prefix).
public struct Route: Sendable {
    public enum Kind: String, Sendable { case direct, broker }
    public let kind: Kind
    public let endpoint: Endpoint
    /// The CA bundle every server certificate must chain to.
    public let caFile: String
    public let clientCert: String?
    public let clientKey: String?
    /// The name checked in the certificate and sent as SNI and Host.
    public let serverName: String?
    public let skipVerify: Bool

    /// Where distributions keep their CA bundle; the first readable one is
    /// the "system roots" default. libcurl is built without a compiled-in
    /// path, so an image without any of these must pass --ca-cert.
    static let systemBundles = [
        "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu, Alpine, distroless
        "/etc/pki/tls/certs/ca-bundle.crt",    // Fedora, RHEL
        "/etc/ssl/ca-bundle.pem",              // openSUSE
        "/etc/ssl/cert.pem",                   // Alpine, macOS
    ]

    public init(kind: Kind, endpoint: Endpoint, caFile: String?, clientCert: String?, clientKey: String?,
                serverName: String?, skipVerify: Bool) throws(BaoWrapError) {
        self.kind = kind
        self.endpoint = endpoint
        self.clientCert = clientCert
        self.clientKey = clientKey
        self.serverName = serverName
        self.skipVerify = skipVerify
        if let caFile {
            self.caFile = caFile
        } else if let found = Route.systemBundles.first(where: FileCheck.isReadable) {
            self.caFile = found
        } else if endpoint.scheme == .http || skipVerify {
            self.caFile = ""
        } else {
            throw BaoWrapError(.config, "no CA bundle found for \(endpoint) (looked in \(Route.systemBundles.joined(separator: ", ")))",
                               hint: "pass --ca-cert FILE (BAOWRAP_CACERT) with the CA that signs OpenBao's certificate")
        }
    }

    /// The host curl puts in the URL: the name to verify, when one is set,
    /// while CURLOPT_CONNECT_TO sends the connection to the real address.
    var urlHost: String { serverName ?? endpoint.host }

    func url(_ path: String) -> String {
        "\(endpoint.scheme.rawValue)://\(urlHost):\(endpoint.port)\(endpoint.pathPrefix)\(path)"
    }
}

public struct HTTPRequest {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }
    public var method: Method
    /// Starts with /v1/; may carry a query string.
    public var path: String
    public var route: Route
    /// A request body in locked memory (login bodies carry the JWT).
    public var body: LockedBuffer?
    /// Header lines (`Name: value`) that hold no secret.
    public var headers: [String] = []
    /// Header lines that hold a secret (the token): NUL-terminated strings in
    /// locked memory that the caller keeps alive until the request is done.
    /// They are linked into curl's header list in place, never copied.
    var secretHeaders: [UnsafePointer<CChar>] = []
    /// Reads one KV v2 version: a 404 may only mean that the answering
    /// standby has not seen it yet, which the client's retry rule allows for.
    var pinnedVersion = false

    public init(_ method: Method, _ path: String, route: Route, body: LockedBuffer? = nil) {
        self.method = method
        self.path = path
        self.route = route
        self.body = body
    }
}

public struct HTTPResponse {
    public let status: Int
    /// The body, in locked memory: it may hold a token or secret values.
    public let body: LockedBuffer
    public let contentType: String?
    public let location: String?

    public var looksLikeJSON: Bool {
        if let ct = contentType?.asciiLowercased, ct.includes("json") { return true }
        return body.withUnsafeBytes { b in b.first(where: { !($0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09) }) == UInt8(ascii: "{") }
    }
}

/// A failure below HTTP: no status line was received.
public struct TransportFailure: Error, Sendable {
    public let code: Int32
    public let message: String
    public let errorClass: ErrorClass
    /// No TCP connection was ever established (refused, unresolvable,
    /// connect timeout): the only failure that lets `--connect auto` fall
    /// back from the broker to direct.
    public let neverConnected: Bool
}

public enum AttemptResult {
    case response(HTTPResponse)
    case failure(TransportFailure)
}

/// The outcome of one request after all its attempts.
public struct HTTPResult {
    public let result: AttemptResult
    public let attempts: Int
    /// The deadline passed while the last outcome was still retryable.
    public let deadlinePassed: Bool
}

/// A curl header list built node by node, so lines that hold a token can
/// point into locked memory instead of being copied by curl_slist_append.
/// curl only reads the list; this class frees what it allocated.
final class HeaderNodes {
    private let nodes: UnsafeMutablePointer<curl_slist>
    private var owned: [UnsafeMutablePointer<CChar>] = []
    let count: Int

    init(plain: [String], secret: [UnsafePointer<CChar>] = []) {
        count = plain.count + secret.count
        nodes = .allocate(capacity: max(count, 1))
        var lines: [UnsafeMutablePointer<CChar>] = plain.map { strdup($0)! }
        owned = lines
        lines += secret.map { UnsafeMutablePointer(mutating: $0) }
        for (i, line) in lines.enumerated() {
            nodes[i] = curl_slist(data: line, next: i + 1 < count ? nodes + i + 1 : nil)
        }
    }

    var list: UnsafeMutablePointer<curl_slist>? { count > 0 ? nodes : nil }

    deinit {
        owned.forEach { free($0) }
        nodes.deallocate()
    }
}

/// Lets a pending SIGTERM stop a long retry loop before the child exists.
public protocol InterruptSource: AnyObject {
    var fd: Int32 { get }
    /// Throws `interrupted` when a terminating signal is pending.
    func checkInterrupt() throws(BaoWrapError)
}

/// The only code that drives libcurl. One multi handle on the main thread
/// runs every transfer, so distinct paths are read concurrently (bounded)
/// over connections the handle keeps alive and shares, with no threads
/// besides curl's resolver: up to `concurrency` keep-alive HTTP/1.1
/// connections, reused across the login, lookups, reads and revocation.
/// Retries are scheduled
/// here, inside the deadline, by asking the caller's `retry` rule.
public final class HTTPEngine {
    private var multi: UnsafeMutableRawPointer
    private let share: UnsafeMutableRawPointer
    private let userAgent: String
    public var interrupt: (any InterruptSource)?
    /// Each attempt may take at most this long, so one black-holed
    /// connection does not eat the whole deadline.
    public var attemptTimeoutMilliseconds = 10_000
    public var connectTimeoutMilliseconds = 5_000
    public static let responseLimit = 4 * 1024 * 1024
    /// Number of HTTP attempts made, for logs and benchmarks.
    public private(set) var attemptsMade = 0
    /// Told of every attempt that will be tried again: the request, what
    /// its attempt number `attempt` got, and the wait in milliseconds.
    public var retried: ((_ request: HTTPRequest, _ result: AttemptResult, _ attempt: Int, _ delay: Int) -> Void)?

    public init(userAgent: String) throws(BaoWrapError) {
        guard bw_tls_init() == 0 else { throw BaoWrapError(.system, "initialising OpenSSL and libcurl failed") }
        multi = curl_multi_init()
        share = curl_share_init()
        self.userAgent = userAgent
        _ = bw_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        _ = bw_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
    }

    /// Closes every kept-alive connection. The watch calls it after each
    /// check: its interval is usually longer than servers and load balancers
    /// keep an idle connection, and each connection's TLS state is freed
    /// (through the wiping allocator) instead of waiting in memory.
    public func closeConnections() {
        curl_multi_cleanup(multi)
        multi = curl_multi_init()
    }

    deinit {
        curl_multi_cleanup(multi)
        curl_share_cleanup(share)
    }

    private final class Transfer {
        let index: Int
        let request: HTTPRequest
        var attempt = 0
        var readyAt: UInt64 = 0
        var body: LockedBuffer?
        var tooLarge = false
        var headers: HeaderNodes?
        var connectTo: HeaderNodes?
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var handle: UnsafeMutableRawPointer?
        var last: AttemptResult?
        init(index: Int, request: HTTPRequest) {
            self.index = index
            self.request = request
        }
    }

    /// Told that request `finished` is done, with every result so far (nil:
    /// not done yet); returns requests to add to the same run.
    public typealias FollowUp = (_ finished: Int, _ results: [HTTPResult?]) throws(BaoWrapError) -> [HTTPRequest]

    /// Runs `requests`, at most `concurrency` at a time. `retry` says whether
    /// an attempt's result deserves another attempt; `followUp` may add
    /// requests as results arrive, so they need not wait for the slowest of
    /// the others. Results come back in request order, added ones last.
    public func run(_ requests: [HTTPRequest], concurrency: Int, deadline: Deadline,
                    retry: (HTTPRequest, AttemptResult) -> Bool,
                    followUp: FollowUp? = nil) throws(BaoWrapError) -> [HTTPResult] {
        var results = [HTTPResult?](repeating: nil, count: requests.count)
        var queue = requests.enumerated().map { Transfer(index: $0.offset, request: $0.element) }
        var active: [UnsafeMutableRawPointer: Transfer] = [:]
        defer {
            for (h, _) in active {
                curl_multi_remove_handle(multi, h)
                curl_easy_cleanup(h)
            }
        }

        func finish(_ t: Transfer, _ r: AttemptResult, deadlinePassed: Bool) throws(BaoWrapError) {
            results[t.index] = HTTPResult(result: r, attempts: t.attempt, deadlinePassed: deadlinePassed)
            for more in try followUp?(t.index, results) ?? [] {
                queue.append(Transfer(index: results.count, request: more))
                results.append(nil)
            }
        }

        while !queue.isEmpty || !active.isEmpty {
            let now = Deadline.now()
            while active.count < concurrency, let i = queue.firstIndex(where: { $0.readyAt <= now }) {
                let t = queue.remove(at: i)
                let remaining = deadline.remainingMilliseconds
                if remaining <= 0 {
                    try finish(t, t.last ?? .failure(Self.deadlineFailure), deadlinePassed: true)
                    continue
                }
                let h = try start(t, timeout: min(remaining, attemptTimeoutMilliseconds))
                active[h] = t
            }
            if queue.isEmpty && active.isEmpty { break }

            var running: Int32 = 0
            _ = curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let h = msg.pointee.easy_handle, let t = active.removeValue(forKey: h) else { continue }
                let code = msg.pointee.data.result
                let r = complete(t, h, code)
                let again = retry(t.request, r)
                if again, case .response = r { Self.closeConnection(h) }
                curl_multi_remove_handle(multi, h)
                curl_easy_cleanup(h)
                t.handle = nil
                t.headers = nil
                t.connectTo = nil
                t.last = r
                if again {
                    if let delay = RetryPolicy.nextDelay(attempt: t.attempt - 1, random: Double.random(in: 0..<1),
                                                         remainingMilliseconds: deadline.remainingMilliseconds) {
                        retried?(t.request, r, t.attempt, delay)
                        t.readyAt = Deadline.now() + UInt64(delay) * 1_000_000
                        queue.append(t)
                    } else {
                        try finish(t, r, deadlinePassed: true)
                    }
                } else {
                    try finish(t, r, deadlinePassed: false)
                }
            }
            if queue.isEmpty && active.isEmpty { break }

            // A queued request only shortens the wait when there is room to
            // start it; with the window full, only curl's sockets matter (a
            // zero wait there would spin through the whole transfer).
            var wait = 1000
            if active.count < concurrency, let next = queue.map(\.readyAt).min() {
                let n = Deadline.now()
                wait = next <= n ? 0 : min(wait, Int((next - n) / 1_000_000) + 1)
            }
            if !active.isEmpty || wait > 0 {
                var extra = [curl_waitfd]()
                if let interrupt { extra.append(curl_waitfd(fd: interrupt.fd, events: Int16(CURL_WAIT_POLLIN), revents: 0)) }
                var numfds: Int32 = 0
                _ = curl_multi_poll(multi, &extra, UInt32(extra.count), Int32(wait), &numfds)
                if let interrupt, extra.first.map({ $0.revents != 0 }) == true { try interrupt.checkInterrupt() }
            }
        }
        return results.map { $0! }
    }

    /// Closes the connection an answer that will be retried came on, so the
    /// next attempt connects anew. Behind a TCP load balancer a connection
    /// stays with one node: reused, it would take every retry back to the
    /// sealed node that answered 503. curl finds the connection dead and
    /// drops it from its cache before any other request can reuse it.
    private static func closeConnection(_ h: UnsafeMutableRawPointer) {
        var fd: curl_socket_t = -1
        if bw_easy_getinfo_socket(h, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK, fd >= 0 {
            _ = system_shutdown(fd, CInt(SHUT_RDWR))
        }
    }

    static let deadlineFailure = TransportFailure(code: Int32(CURLE_OPERATION_TIMEDOUT.rawValue), message: "deadline passed before the request could be sent",
                                                  errorClass: .timeout, neverConnected: true)

    private func start(_ t: Transfer, timeout: Int) throws(BaoWrapError) -> UnsafeMutableRawPointer {
        guard let h = curl_easy_init() else { throw BaoWrapError(.system, "curl_easy_init failed") }
        t.attempt += 1
        attemptsMade += 1
        // One page holds a typical KV answer; bodies grow on demand, and 16
        // reads in flight stay inside a 64 KiB RLIMIT_MEMLOCK.
        t.body = try LockedBuffer(capacity: LockedRegion.pageSize, limit: HTTPEngine.responseLimit)
        t.tooLarge = false
        t.errorBuffer.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        let req = t.request
        let route = req.route
        // Without "Expect:" curl waits for "100 Continue" on bodies over
        // 1 KiB: a round trip (or a second) for nothing on every login.
        var plain = ["Expect:", "Accept: application/json"]
        if req.method == .post { plain.append("Content-Type: application/json") }
        plain += req.headers
        let headers = HeaderNodes(plain: plain, secret: req.secretHeaders)
        t.headers = headers

        var ok = CURLE_OK
        func set(_ r: CURLcode) { if ok == CURLE_OK { ok = r } }
        set(bw_easy_setopt_str(h, CURLOPT_URL, route.url(req.path)))
        set(bw_easy_setopt_str(h, CURLOPT_PROTOCOLS_STR, route.endpoint.scheme == .http ? "http" : "https"))
        set(bw_easy_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        set(bw_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        set(bw_easy_setopt_str(h, CURLOPT_USERAGENT, userAgent))
        set(bw_easy_setopt_ptr(h, CURLOPT_SHARE, share))
        set(bw_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, timeout))
        set(bw_easy_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, min(timeout, connectTimeoutMilliseconds)))
        set(bw_easy_setopt_slist(h, CURLOPT_HTTPHEADER, headers.list))
        set(t.errorBuffer.withUnsafeMutableBufferPointer { bw_easy_setopt_ptr(h, CURLOPT_ERRORBUFFER, $0.baseAddress) })
        if route.endpoint.scheme == .https {
            set(bw_easy_setopt_long(h, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2)))
            if !route.caFile.isEmpty { set(bw_easy_setopt_str(h, CURLOPT_CAINFO, route.caFile)) }
            set(bw_easy_setopt_long(h, CURLOPT_SSL_VERIFYPEER, route.skipVerify ? 0 : 1))
            set(bw_easy_setopt_long(h, CURLOPT_SSL_VERIFYHOST, route.skipVerify ? 0 : 2))
            if let c = route.clientCert { set(bw_easy_setopt_str(h, CURLOPT_SSLCERT, c)) }
            if let k = route.clientKey { set(bw_easy_setopt_str(h, CURLOPT_SSLKEY, k)) }
            set(bw_easy_cleanse_plaintext(h))
        }
        if let name = route.serverName, name != route.endpoint.host {
            let connectTo = HeaderNodes(plain: ["\(name):\(route.endpoint.port):\(route.endpoint.host):\(route.endpoint.port)"])
            t.connectTo = connectTo
            set(bw_easy_setopt_slist(h, CURLOPT_CONNECT_TO, connectTo.list))
        }
        switch req.method {
        case .get:
            set(bw_easy_setopt_long(h, CURLOPT_HTTPGET, 1))
        case .post:
            set(bw_easy_setopt_long(h, CURLOPT_POST, 1))
            if let body = req.body {
                // POSTFIELDS points into locked memory; curl does not copy it.
                body.withUnsafeBytes { b in
                    set(bw_easy_setopt_ptr(h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: b.baseAddress)))
                    set(bw_easy_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(b.count)))
                }
            } else {
                set(bw_easy_setopt_str(h, CURLOPT_POSTFIELDS, ""))
            }
        }
        set(bw_easy_setopt_writefn(h, { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            guard let ptr, let body = t.body else { return 0 }
            do {
                if try body.append(UnsafeRawBufferPointer(start: ptr, count: count)) { return count }
                t.tooLarge = true
            } catch {}
            return 0
        }))
        set(bw_easy_setopt_ptr(h, CURLOPT_WRITEDATA, Unmanaged.passUnretained(t).toOpaque()))
        guard ok == CURLE_OK else {
            curl_easy_cleanup(h)
            throw BaoWrapError(.system, "configuring libcurl failed: \(String(cString: curl_easy_strerror(ok)))")
        }
        t.handle = h
        curl_multi_add_handle(multi, h)
        return h
    }

    private func complete(_ t: Transfer, _ h: UnsafeMutableRawPointer, _ code: CURLcode) -> AttemptResult {
        if code == CURLE_OK, let body = t.body {
            var status = 0
            _ = bw_easy_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
            var ct: UnsafeMutablePointer<CChar>?
            _ = bw_easy_getinfo_str(h, CURLINFO_CONTENT_TYPE, &ct)
            var loc: UnsafeMutablePointer<CChar>?
            _ = bw_easy_getinfo_str(h, CURLINFO_REDIRECT_URL, &loc)
            return .response(HTTPResponse(status: status, body: body, contentType: ct.map { String(cString: $0) },
                                          location: loc.map { String(cString: $0) }))
        }
        t.body?.wipe()
        var connectTime: curl_off_t = 0
        _ = bw_easy_getinfo_off(h, CURLINFO_CONNECT_TIME_T, &connectTime)
        let detail = t.errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return .failure(Self.classify(code: code, detail: detail, tooLarge: t.tooLarge, connected: connectTime > 0))
    }

    /// Maps a libcurl error to the spec's classes. TLS alerts can arrive as a
    /// receive error (TLS 1.3 sends "certificate required" after the
    /// handshake), so the error text is consulted; an EOF during the
    /// handshake is a load balancer with no backend, which is worth a retry.
    static func classify(code: CURLcode, detail: String, tooLarge: Bool, connected: Bool) -> TransportFailure {
        // OpenSSL messages from curl can end in a space.
        let text = (detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail).trimmingSpaces
        let lower = text.asciiLowercased
        let raw = Int32(code.rawValue)
        func f(_ c: ErrorClass, never: Bool = false) -> TransportFailure {
            TransportFailure(code: raw, message: text, errorClass: c, neverConnected: never)
        }
        if lower.includes("alert") || lower.includes("certificate") || lower.includes("wrong version number") {
            return f(.tls)
        }
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            return f(.connect, never: true)
        case CURLE_OPERATION_TIMEDOUT:
            return f(.timeout, never: !connected)
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            return f(.connect)
        case CURLE_SSL_CONNECT_ERROR:
            if lower.includes("syscall") || lower.includes("eof") || lower.includes("reset") { return f(.connect) }
            return f(.tls)
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_CRL_BADFILE, CURLE_SSL_INVALIDCERTSTATUS,
             CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_SHUTDOWN_FAILED:
            return f(.tls)
        case CURLE_WRITE_ERROR where tooLarge:
            return TransportFailure(code: raw, message: "response larger than \(responseLimit / 1024 / 1024) MiB", errorClass: .badResponse, neverConnected: false)
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return f(.config)
        default:
            return f(.badResponse)
        }
    }
}
