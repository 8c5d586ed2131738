/// The closed list of failure classes a user can act on. Every error baowrap
/// reports carries exactly one, and the troubleshooting guide has a section
/// per class (docs/troubleshooting.md).
public enum ErrorClass: String, Sendable, CaseIterable {
    case authDenied = "auth_denied"
    case notFound = "not_found"
    case versionDeleted = "version_deleted"
    case permissionDenied = "permission_denied"
    case sealed
    case rateLimited = "rate_limited"
    case tls
    case connect
    case timeout
    case badResponse = "bad_response"
    case config
    /// An operating-system call failed (spawn, install, signalfd...).
    case system
    /// A signal stopped baowrap before the workload started.
    case interrupted
}

/// A failure of baowrap itself. It holds only text that is safe to log: never
/// a secret value, a JWT or a token (those live in `LockedBuffer`s, which
/// have no textual form). It becomes text in exactly one place, `rendered`.
public struct BaoWrapError: Error, Sendable, Equatable {
    public var errorClass: ErrorClass
    /// What went wrong, in a few words, e.g. "cannot read JWT file /var/run/...".
    public var message: String
    /// The environment variable the failure is about, when there is one.
    public var variable: String?
    /// What the user can do about it.
    public var hint: String?
    /// The OS error, when a syscall failed.
    public var errno: Errno?
    /// Set when the child was never started because a signal arrived first.
    public var signal: Int32?

    public init(_ errorClass: ErrorClass, _ message: String, variable: String? = nil,
                hint: String? = nil, errno: Errno? = nil) {
        self.errorClass = errorClass
        self.message = message
        self.variable = variable
        self.hint = hint
        self.errno = errno
    }

    /// Equality compares the class only: tests ask "which kind of failure".
    public static func == (a: BaoWrapError, b: BaoWrapError) -> Bool { a.errorClass == b.errorClass }

    /// The one-line text form shared by the CLI and the logger.
    public var rendered: String {
        var s = message
        if let errno { s += ": \(errno)" }
        if let variable { s = "\(variable): " + s }
        if let hint { s += " (hint: \(hint))" }
        return s
    }

    public func with(variable: String) -> BaoWrapError {
        var e = self
        e.variable = variable
        return e
    }

    static func config(_ message: String, hint: String? = nil) -> BaoWrapError {
        BaoWrapError(.config, message, hint: hint)
    }

    static func system(_ op: String, _ errno: Errno) -> BaoWrapError {
        BaoWrapError(.system, "\(op) failed", errno: errno)
    }
}
