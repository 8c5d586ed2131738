import CBaoWrap
import Testing
@testable import BaoWrapCore

@Suite struct RetryPolicyTests {
    @Test(arguments: [
        (429, true), (412, true), (500, true), (502, true), (503, true), (504, true), (599, true),
        (307, true), (301, true),
        (200, false), (204, false), (400, false), (401, false), (403, false), (404, false), (405, false),
        (501, false),
    ])
    func status(_ status: Int, retry: Bool) {
        #expect(RetryPolicy.isRetryable(status: status) == retry)
    }

    @Test(arguments: [
        (ErrorClass.connect, true), (.timeout, true),
        (.tls, false), (.badResponse, false), (.config, false), (.system, false),
    ])
    func transport(_ c: ErrorClass, retry: Bool) {
        let f = TransportFailure(code: 0, message: "", errorClass: c, neverConnected: false)
        #expect(RetryPolicy.isRetryable(f) == retry)
    }

    @Test(arguments: [(0, 50, 100), (1, 100, 200), (2, 200, 400), (3, 400, 800), (4, 800, 1600),
                      (5, 1000, 2000), (6, 1000, 2000), (62, 1000, 2000), (10_000, 1000, 2000)])
    func delay_doublesFrom100ms_cappedAt2s_withEqualJitter(attempt: Int, low: Int, high: Int) {
        #expect(RetryPolicy.delayMilliseconds(attempt: attempt, random: 0) == low)
        #expect(RetryPolicy.delayMilliseconds(attempt: attempt, random: 0.5) == (low + high) / 2)
        let top = RetryPolicy.delayMilliseconds(attempt: attempt, random: 0.999_999)
        #expect(top >= low && top < high)
    }

    // (attempt, random, remaining ms, wait): the backoff while it fits; then
    // one shortened wait that leaves the last attempt 100 ms; then none.
    @Test(arguments: [
        (0, 0.0, 30_000, 50 as Int?), (4, 0.5, 30_000, 1200), (9, 0.0, 30_000, 1000),
        (4, 0.5, 1_000, 900), (6, 0.0, 600, 500), (0, 0.0, 101, 1),
        (0, 0.0, 100, nil), (0, 0.0, 40, nil), (3, 0.9, 0, nil),
    ])
    func nextDelay_usesTheTimeLeft(attempt: Int, random: Double, remaining: Int, wait: Int?) {
        #expect(RetryPolicy.nextDelay(attempt: attempt, random: random, remainingMilliseconds: remaining) == wait)
    }
}

@Suite struct UnseenVersionTests {
    @Test func bare404_isAVersionThisNodeHasNotSeen() throws {
        #expect(OpenBaoClient.isUnseenVersion(try response(404, Array(#"{"errors":[]}"#.utf8))))
    }

    @Test func deletedOrDestroyedVersion_isFinal() throws {
        let deleted = #"{"data":{"data":null,"metadata":{"version":2,"deletion_time":"2026-01-01T00:00:00Z","destroyed":false}}}"#
        #expect(!OpenBaoClient.isUnseenVersion(try response(404, Array(deleted.utf8))))
    }

    @Test func proxyPage_isNotOpenBaosAnswer() throws {
        let page = try response(404, Array("<html><title>404 Not Found</title></html>".utf8), contentType: "text/html")
        #expect(!OpenBaoClient.isUnseenVersion(page))
    }
}

@Suite struct OpenBaoErrorClassTests {
    typealias C = OpenBaoClient.Context

    @Test(arguments: [
        // OpenBao's own answers
        (403, C.login, ErrorClass.authDenied), (400, .login, .authDenied), (401, .login, .authDenied),
        (403, .read, .permissionDenied), (401, .read, .permissionDenied), (403, .mount, .permissionDenied),
        (404, .read, .notFound), (404, .mount, .notFound), (404, .login, .config),
        (429, .read, .rateLimited), (429, .login, .rateLimited),
        (503, .read, .sealed), (503, .login, .sealed),
        (502, .read, .connect), (504, .login, .connect), (307, .read, .connect), (301, .login, .connect),
        (500, .read, .badResponse), (501, .read, .badResponse), (412, .read, .badResponse), (400, .read, .badResponse),
        (405, .read, .badResponse), (418, .revoke, .badResponse),
    ])
    func openBaoJSON(status: Int, context: C, expected: ErrorClass) {
        #expect(OpenBaoClient.errorClass(APIFailure(status: status, errors: ["x"]), context) == expected)
    }

    @Test func standbyWithoutLeader_isConnect() {
        let f = APIFailure(status: 500, errors: ["local node not active but active cluster node not found"])
        #expect(OpenBaoClient.errorClass(f, .read) == .connect)
    }

    @Test(arguments: [
        // A proxy's page is never an auth or policy verdict.
        (403, C.login, nil as String?, ErrorClass.badResponse), (401, .read, "401 Authorization Required", .badResponse),
        (404, .login, "404 Not Found", .badResponse), (400, .login, "400 Bad Request", .badResponse),
        (400, .login, "400 No required SSL certificate was sent", .tls),
        (400, .read, "400 The SSL certificate error", .tls),
        // Status still decides the 429 and 5xx from a proxy.
        (429, .read, "429 Too Many Requests", .rateLimited), (502, .login, "502 Bad Gateway", .connect),
        (504, .read, nil, .connect), (503, .read, "503 Service Temporarily Unavailable", .sealed),
        (200, .read, nil, .badResponse),
    ])
    func foreignBody(status: Int, context: C, title: String?, expected: ErrorClass) {
        let f = APIFailure(status: status, foreignBody: "non-JSON body", title: title)
        #expect(OpenBaoClient.errorClass(f, context) == expected)
    }
}

@Suite struct TransportClassTests {
    @Test(arguments: [
        (CURLE_COULDNT_CONNECT, "Failed to connect to 127.0.0.1 port 1: Connection refused", false, ErrorClass.connect, true),
        (CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: nowhere.invalid", false, .connect, true),
        (CURLE_OPERATION_TIMEDOUT, "Connection timed out after 5001 milliseconds", false, .timeout, true),
        (CURLE_OPERATION_TIMEDOUT, "Operation timed out after 2000 milliseconds with 0 bytes received", true, .timeout, false),
        (CURLE_RECV_ERROR, "Recv failure: Connection reset by peer", true, .connect, false),
        (CURLE_SEND_ERROR, "Send failure: Broken pipe", true, .connect, false),
        (CURLE_GOT_NOTHING, "Empty reply from server", true, .connect, false),
        (CURLE_PARTIAL_FILE, "transfer closed with 100 bytes remaining to read", true, .connect, false),
        (CURLE_RECV_ERROR, "OpenSSL SSL_read: error:0A00045C:SSL routines::tlsv13 alert certificate required, errno 0",
         true, .tls, false),
        (CURLE_SSL_CONNECT_ERROR, "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:8200", true, .connect, false),
        (CURLE_SSL_CONNECT_ERROR, "error:0A000126:SSL routines::unexpected eof while reading", true, .connect, false),
        (CURLE_SSL_CONNECT_ERROR, "error:0A00010B:SSL routines::wrong version number", true, .tls, false),
        (CURLE_SSL_CONNECT_ERROR, "error:0A000410:SSL routines::sslv3 alert handshake failure", true, .tls, false),
        (CURLE_PEER_FAILED_VERIFICATION, "SSL: no alternative certificate subject name matches target host name 'x'", true, .tls, false),
        (CURLE_PEER_FAILED_VERIFICATION, "SSL certificate problem: unable to get local issuer certificate", true, .tls, false),
        (CURLE_SSL_CACERT_BADFILE, "error setting certificate file: /etc/ca.pem", false, .tls, false),
        (CURLE_SSL_CERTPROBLEM, "could not load PEM client certificate", false, .tls, false),
        (CURLE_URL_MALFORMAT, "URL rejected: Malformed input to a URL function", false, .config, false),
        (CURLE_UNSUPPORTED_PROTOCOL, "Protocol \"http\" not supported", false, .config, false),
        (CURLE_WRITE_ERROR, "Failure writing output to destination", true, .badResponse, false),
        (CURLE_BAD_CONTENT_ENCODING, "Unrecognized content encoding", true, .badResponse, false),
    ])
    func classify(code: CURLcode, detail: String, connected: Bool, expected: ErrorClass, neverConnected: Bool) {
        let f = HTTPEngine.classify(code: code, detail: detail, tooLarge: false, connected: connected)
        #expect(f.errorClass == expected, "\(detail)")
        #expect(f.neverConnected == neverConnected, "\(detail)")
        #expect(f.message == detail)
    }

    @Test func tooLarge_isBadResponse_withTheLimit() {
        let f = HTTPEngine.classify(code: CURLE_WRITE_ERROR, detail: "Failure writing output", tooLarge: true, connected: true)
        #expect(f.errorClass == .badResponse)
        #expect(f.message == "response larger than 4 MiB")
    }

    @Test func tlsEOFFromALoadBalancer_isConnect_withoutTrailingSpace() {
        let f = HTTPEngine.classify(code: CURLE_SSL_CONNECT_ERROR, detail: "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:8200 ",
                                    tooLarge: false, connected: true)
        #expect(f.errorClass == .connect)
        #expect(f.message == "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:8200")
    }

    @Test func emptyDetail_usesCurlsOwnText() {
        let f = HTTPEngine.classify(code: CURLE_COULDNT_CONNECT, detail: "", tooLarge: false, connected: false)
        #expect(f.message == "Couldn't connect to server")
    }
}
