import Glibc

/// An errno value as a typed error, after swift-system's `Errno`.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// The calling thread's current errno.
    static var current: Errno { Errno(rawValue: Glibc.errno) }

    /// The corresponding C error is `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)
    /// The corresponding C error is `EAGAIN`.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// The corresponding C error is `ENOENT`.
    public static let noSuchFileOrDirectory = Errno(rawValue: ENOENT)
    /// The corresponding C error is `EACCES`.
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// The corresponding C error is `ENOEXEC`.
    public static let execFormatError = Errno(rawValue: ENOEXEC)
    /// The corresponding C error is `EISDIR`.
    public static let isDirectory = Errno(rawValue: EISDIR)
    /// The corresponding C error is `ENOTDIR`.
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    /// The corresponding C error is `E2BIG`.
    public static let argListTooLong = Errno(rawValue: E2BIG)
    /// The corresponding C error is `ESRCH`.
    public static let noSuchProcess = Errno(rawValue: ESRCH)
    /// The corresponding C error is `ECHILD`.
    public static let noChildProcess = Errno(rawValue: ECHILD)
    /// The corresponding C error is `ENOSYS`.
    public static let noFunction = Errno(rawValue: ENOSYS)
    /// The corresponding C error is `EPERM`.
    public static let notPermitted = Errno(rawValue: EPERM)
    /// The corresponding C error is `ENOMEM`.
    public static let noMemory = Errno(rawValue: ENOMEM)

    public var description: String {
        guard let s = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: s)
    }

    public static func ~= (pattern: Errno, value: any Error) -> Bool {
        (value as? Errno) == pattern
    }
}

/// Runs `body` until it succeeds or fails with something other than EINTR
/// (when `retryOnInterrupt`). `body` returns -1 and sets errno on failure.
@inline(__always)
func valueOrErrno<T: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ body: () -> T) -> Result<T, Errno> {
    while true {
        let r = body()
        if r != -1 { return .success(r) }
        let e = Errno.current
        if e == .interrupted && retryOnInterrupt { continue }
        return .failure(e)
    }
}

@inline(__always)
func nothingOrErrno<T: FixedWidthInteger>(retryOnInterrupt: Bool = true, _ body: () -> T) -> Result<Void, Errno> {
    valueOrErrno(retryOnInterrupt: retryOnInterrupt, body).map { _ in () }
}
