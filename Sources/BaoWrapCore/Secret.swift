/// A secret value: bytes in a `LockedRegion`, never in a Swift `String`,
/// `Array` or anything else that could be printed, logged, encoded or
/// swapped. It has no textual form: `description` and reflection show only
/// its length.
public struct Secret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let region: LockedRegion
    let offset: Int
    public let count: Int

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: region.base + offset, count: count))
    }

    /// Constant-time comparison, so tests and the rotation watch never need
    /// the bytes outside locked memory.
    public func equals(_ other: UnsafeRawBufferPointer) -> Bool {
        guard other.count == count else { return false }
        return withUnsafeBytes { mine in
            var diff: UInt8 = 0
            for i in 0..<count { diff |= mine[i] ^ other[i] }
            return diff == 0
        }
    }

    public var description: String { "<secret, \(count) bytes>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// Where secret values are kept between the fetch and the spawn: a bump
/// allocator over locked regions, so a hundred small values share a page or
/// two of the (often 64 KiB) RLIMIT_MEMLOCK budget; a large value gets a
/// region of its own size. `wipeAll` zeroes every region at once, right
/// after the child has been spawned.
public final class SecretArena {
    private var regions: [LockedRegion] = []
    private var used = 0

    public init() {}

    /// Hands `body` a writable span of `capacity` bytes; `body` returns how
    /// many it wrote. Lets the JSON reader unescape straight into locked memory.
    func write(capacity: Int, _ body: (UnsafeMutableRawBufferPointer) throws(BaoWrapError) -> Int) throws(BaoWrapError) -> Secret {
        let region = try reserve(capacity)
        let start = used
        let n = try body(UnsafeMutableRawBufferPointer(start: region.base + start, count: capacity))
        precondition(n <= capacity)
        used += n
        return Secret(region: region, offset: start, count: n)
    }

    private func reserve(_ n: Int) throws(BaoWrapError) -> LockedRegion {
        if let last = regions.last, last.size - used >= n { return last }
        let region = try LockedRegion(size: max(LockedRegion.pageSize, n), kind: .secret)
        regions.append(region)
        used = 0
        return region
    }

    /// Zeroes every region and lets go of it; a region is unmapped once the
    /// last `Secret` pointing into it is gone. Secrets handed out before read
    /// as zeros from now on.
    public func wipeAll() {
        for r in regions { r.wipe() }
        regions.removeAll()
        used = 0
    }
}
