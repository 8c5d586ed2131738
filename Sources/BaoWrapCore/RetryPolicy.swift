/// Which failures are worth another try, and how long to wait before it.
/// Pure functions, table-tested (RetryPolicyTests). Mirrors OpenBao's own
/// client policy: connection errors, 429, 412 and 5xx except 501 are
/// retried; TLS failures and other 4xx never are, since trying again cannot
/// change the answer. Redirects are never followed: during a Raft leader
/// election a standby answers 307 pointing at the dead leader, and the right
/// move is to ask the load balancer again.
public enum RetryPolicy {
    public static func isRetryable(status: Int) -> Bool {
        switch status {
        case 429, 412: return true
        case 300...399: return true
        case 501: return false
        case 500...599: return true
        default: return false
        }
    }

    public static func isRetryable(_ failure: TransportFailure) -> Bool {
        switch failure.errorClass {
        case .connect, .timeout: return true
        default: return false
        }
    }

    /// Exponential backoff from 100 ms, doubling, capped at 2 s, with "equal
    /// jitter" (half fixed, half random) so a fleet of pods restarted
    /// together does not retry in lockstep. `random` is in [0, 1).
    public static func delayMilliseconds(attempt: Int, random: Double) -> Int {
        let base = min(2000, 100 << min(attempt, 5))
        return base / 2 + Int(Double(base / 2) * random)
    }

    /// The least time an attempt is started with: less than this cannot
    /// cover even a TLS handshake to a nearby server.
    public static let minimumAttemptMilliseconds = 100

    /// The wait before the next attempt, or nil when no attempt fits before
    /// the deadline any more. The last wait is cut short rather than
    /// skipped, so a leader election that ends shortly before --timeout
    /// still lets the start through.
    public static func nextDelay(attempt: Int, random: Double, remainingMilliseconds: Int) -> Int? {
        let room = remainingMilliseconds - minimumAttemptMilliseconds
        guard room > 0 else { return nil }
        return min(delayMilliseconds(attempt: attempt, random: random), room)
    }
}
