import Glibc

/// A point on the monotonic clock; `--timeout` becomes one of these and
/// every wait and retry is clipped to it.
public struct Deadline: Sendable {
    public let nanoseconds: UInt64

    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public init(after d: Duration) {
        nanoseconds = Deadline.now() + UInt64(max(0, d.milliseconds)) * 1_000_000
    }

    /// Milliseconds left, never negative.
    public var remainingMilliseconds: Int {
        let now = Deadline.now()
        return now >= nanoseconds ? 0 : Int((nanoseconds - now) / 1_000_000)
    }

    public var hasPassed: Bool { Deadline.now() >= nanoseconds }
}
