import CBaoWrap
import Glibc

/// A signal number, typed so it cannot be mixed up with a pid or a status.
public struct Signal: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    public static let hup = Signal(rawValue: SIGHUP)
    public static let int = Signal(rawValue: SIGINT)
    public static let quit = Signal(rawValue: SIGQUIT)
    public static let term = Signal(rawValue: SIGTERM)
    public static let kill = Signal(rawValue: SIGKILL)
    public static let chld = Signal(rawValue: SIGCHLD)

    /// Signals that end baowrap while it is still fetching (no child yet):
    /// a pod deleted during a long retry must not wait out --timeout.
    static let stopBeforeStart: Set<Signal> = [.hup, .int, .quit, .term]
    /// Signals that mean the workload is being shut down once it runs.
    static let termination: Set<Signal> = [.int, .quit, .term]

    public var description: String {
        let names: [CInt: String] = [SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGTERM: "SIGTERM", SIGKILL: "SIGKILL",
                                     SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2", SIGCHLD: "SIGCHLD", SIGWINCH: "SIGWINCH",
                                     SIGALRM: "SIGALRM", SIGPIPE: "SIGPIPE", SIGCONT: "SIGCONT", SIGTSTP: "SIGTSTP"]
        return names[rawValue] ?? "signal \(rawValue)"
    }

    /// Parses "TERM", "SIGTERM" or "15".
    public init?(name: String) {
        let upper = name.asciiUppercased
        let bare = upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper
        let table: [String: CInt] = ["HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "TERM": SIGTERM, "KILL": SIGKILL,
                                     "USR1": SIGUSR1, "USR2": SIGUSR2, "WINCH": SIGWINCH, "ALRM": SIGALRM, "CONT": SIGCONT]
        if let n = table[bare] { self.init(rawValue: n) } else if let n = CInt(name), n > 0, n < 65 { self.init(rawValue: n) } else { return nil }
    }
}

/// baowrap's ownership of signals: every catchable signal is blocked before
/// any thread exists (libcurl's resolver threads inherit the mask) and read
/// from a signalfd on the main thread; nothing runs in a signal handler.
public final class Signals: InterruptSource {
    /// The mask baowrap was started with; the child gets it back, so a
    /// workload sees the mask it would have without the wrapper (as tini).
    public let original: sigset_t
    public let fd: Int32
    /// Signals that arrived before supervision began and that did not stop
    /// baowrap; they are forwarded once it begins.
    public private(set) var deferred: [Signal] = []
    /// Set by the supervisor once the child runs: from then on every signal
    /// is the child's, also one that arrives while baowrap still revokes its
    /// token (the kubelet's SIGTERM right after start must not be lost).
    var childStarted = false

    /// Must be the first thing `main` does. The corresponding C functions
    /// are `sigprocmask`, `sigaction` and `signalfd`.
    public static func takeOver() throws(BaoWrapError) -> Signals {
        var original = sigset_t()
        guard bw_take_over_signals(&original) == 0 else { throw .system("sigprocmask", .current) }
        var set = sigset_t()
        bw_supervised_signals(&set)
        let fd = bw_signalfd(&set)
        guard fd >= 0 else { throw .system("signalfd", .current) }
        return Signals(original: original, fd: fd)
    }

    private init(original: sigset_t, fd: Int32) {
        self.original = original
        self.fd = fd
    }

    /// Reads every pending signal without blocking.
    public func drain() -> [Signal] {
        var out: [Signal] = []
        while true {
            var signo: Int32 = 0
            var sender: pid_t = 0
            if bw_signalfd_read(fd, &signo, &sender) != 0 {
                // EAGAIN: nothing left. EINTR cannot happen with every
                // signal blocked, but reading again is harmless.
                if Errno.current == .interrupted { continue }
                return out
            }
            out.append(Signal(rawValue: signo))
        }
    }

    public func checkInterrupt() throws(BaoWrapError) {
        for s in drain() {
            if !childStarted && Signal.stopBeforeStart.contains(s) {
                var e = BaoWrapError(.interrupted, "\(s) received before the command started; not starting it")
                e.signal = s.rawValue
                throw e
            }
            if s != .chld { deferred.append(s) }
        }
    }

    public func takeDeferred() -> [Signal] {
        defer { deferred = [] }
        return deferred
    }
}
