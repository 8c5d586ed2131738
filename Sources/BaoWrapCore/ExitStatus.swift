/// Exit statuses of baowrap, following the shell convention used by
/// `env`, `timeout`, `docker run` and tini: 125 is the wrapper's own failure,
/// 126 "found but cannot execute", 127 "not found", 128+N death by signal N
/// (https://tldp.org/LDP/abs/html/exitcodes.html).
public enum ExitStatus: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)
    case wrapperFailure
    case notExecutable
    case commandNotFound

    public var code: Int32 {
        switch self {
        case .exited(let c): return c & 0xff
        case .signaled(let n): return (128 + n) % 256
        case .wrapperFailure: return 125
        case .notExecutable: return 126
        case .commandNotFound: return 127
        }
    }

    /// `check` reports "some secret did not resolve" as 1, like `test`.
    public static let checkFailed = ExitStatus.exited(1)
    /// `--on-change exit`: sysexits' EX_TEMPFAIL, "try again", which is what
    /// the pod's restart does with the new values.
    public static let secretsChanged = ExitStatus.exited(75)
}
