import CBaoWrap
import Glibc
import Synchronization

/// One mapping of anonymous memory for secret bytes: locked into RAM (no
/// swap), excluded from core dumps, zeroed in any forked child, explicitly
/// wiped and unmapped when released. Only this file and `Secret.swift`
/// touch secret bytes directly.
final class LockedRegion {
    enum Kind {
        /// memfd_secret(2) where the kernel offers it: the pages leave the
        /// kernel's direct map and no other process (not even root through
        /// /proc/PID/mem, ptrace or gcore) can read them. The kernel still
        /// copies from them on the process's own behalf (write(2), execve's
        /// argv/envp), so the child's environment block can live here too.
        case secret
        /// Plain private anonymous pages.
        case anonymous
    }

    let base: UnsafeMutableRawPointer
    let size: Int
    let kind: Kind
    /// False when mlock was refused (RLIMIT_MEMLOCK); the bytes may then be swapped.
    let locked: Bool

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    init(size requested: Int, kind wanted: Kind) throws(BaoWrapError) {
        let size = max(LockedRegion.pageSize, (requested + LockedRegion.pageSize - 1) / LockedRegion.pageSize * LockedRegion.pageSize)
        var kind = wanted
        var mapping: UnsafeMutableRawPointer?
        if kind == .secret {
            mapping = LockedRegion.mapSecretMemory(size)
            if mapping == nil { kind = .anonymous }
        }
        if mapping == nil {
            mapping = system_mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1)
        }
        guard let base = mapping else { throw .system("mmap", .current) }
        // Both are best effort: MADV_WIPEONFORK needs Linux 4.14 and neither
        // applies to memfd_secret mappings, which are never dumped or shared.
        if kind == .anonymous {
            _ = system_madvise(base, size, MADV_DONTDUMP)
            _ = system_madvise(base, size, 18 /* MADV_WIPEONFORK */)
        }
        self.base = base
        self.size = size
        self.kind = kind
        // memfd_secret pages are locked by the kernel (and counted against
        // RLIMIT_MEMLOCK when mapped); only plain pages need mlock.
        self.locked = kind == .secret || system_mlock(base, size) == 0
        MemoryLocks.record(self)
    }

    private static func mapSecretMemory(_ size: Int) -> UnsafeMutableRawPointer? {
        let fd = system_memfd_secret()
        guard fd >= 0 else { return nil }
        defer { _ = system_close(fd) }
        guard system_ftruncate(fd, size) == 0 else { return nil }
        return system_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
    }

    func wipe(_ count: Int? = nil) {
        bw_explicit_bzero(base, count ?? size)
    }

    deinit {
        bw_explicit_bzero(base, size)
        if locked && kind == .anonymous { _ = system_munlock(base, size) }
        _ = system_munmap(base, size)
    }
}

/// What happened to memory locking in this process, so the caller can log
/// the spec's single `mlock_unavailable` warning or refuse to go on. Every
/// region counts, response bodies and header buffers included, so a partial
/// refusal under a small RLIMIT_MEMLOCK is not missed.
public enum MemoryLocks {
    private static let all = Atomic<Int>(0)
    private static let refused = Atomic<Int>(0)
    private static let secretMemory = Atomic<Int>(0)

    public static var regions: Int { all.load(ordering: .relaxed) }
    /// Regions whose pages could not be locked (RLIMIT_MEMLOCK).
    public static var refusedRegions: Int { refused.load(ordering: .relaxed) }
    /// Regions that got memfd_secret pages.
    public static var secretMemoryRegions: Int { secretMemory.load(ordering: .relaxed) }

    static func record(_ region: LockedRegion) {
        all.add(1, ordering: .relaxed)
        if !region.locked { refused.add(1, ordering: .relaxed) }
        if region.kind == .secret { secretMemory.add(1, ordering: .relaxed) }
    }

    /// Maps, locks and releases one page the way secrets will be stored, so
    /// a refusal is counted before the first secret byte is read.
    public static func probe() throws(BaoWrapError) {
        _ = try LockedRegion(size: LockedRegion.pageSize, kind: .secret)
    }
}

/// A growable byte buffer in a `LockedRegion`: response bodies, request
/// bodies holding a JWT, the JWT itself. Growing maps a larger region, copies
/// and wipes the old one, so no stale copy is left behind.
public final class LockedBuffer {
    private(set) var region: LockedRegion
    public private(set) var count = 0
    private let kind: LockedRegion.Kind
    /// Appending past this many bytes fails, so a hostile or broken server
    /// cannot make baowrap grow without bound.
    let limit: Int

    init(capacity: Int = 4096, limit: Int = Int.max, kind: LockedRegion.Kind = .secret) throws(BaoWrapError) {
        self.kind = kind
        self.limit = limit
        region = try LockedRegion(size: capacity, kind: kind)
    }

    public var isEmpty: Bool { count == 0 }

    /// Makes room for `extra` more bytes; false when that would pass `limit`.
    private func reserve(_ extra: Int) throws(BaoWrapError) -> Bool {
        guard extra <= limit - count else { return false }
        if count + extra > region.size { try grow(to: count + extra) }
        return true
    }

    /// False when the bytes would pass `limit`; nothing is appended then.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) throws(BaoWrapError) -> Bool {
        guard try reserve(bytes.count) else { return false }
        if let src = bytes.baseAddress, bytes.count > 0 {
            (region.base + count).copyMemory(from: src, byteCount: bytes.count)
        }
        count += bytes.count
        return true
    }

    /// Appends text that is not secret (JSON punctuation, header names).
    func append(_ string: String) throws(BaoWrapError) {
        let n = string.utf8.count
        guard try reserve(n) else { throw BaoWrapError(.badResponse, "buffer limit of \(limit) bytes reached") }
        var s = string
        let dest = region.base + count
        s.withUTF8 { u in if n > 0 { dest.copyMemory(from: u.baseAddress!, byteCount: n) } }
        count += n
    }

    func append(byte: UInt8) throws(BaoWrapError) {
        guard try reserve(1) else { throw BaoWrapError(.badResponse, "buffer limit of \(limit) bytes reached") }
        region.base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    private func grow(to needed: Int) throws(BaoWrapError) {
        var size = region.size
        while size < needed { size *= 2 }
        let bigger = try LockedRegion(size: size, kind: kind)
        bigger.base.copyMemory(from: region.base, byteCount: count)
        region = bigger  // the old region wipes itself in deinit
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: region.base, count: count))
    }

    /// A NUL-terminated view for C APIs; the terminator lives in the region too.
    func withCString<R>(_ body: (UnsafePointer<CChar>) -> R) throws(BaoWrapError) -> R {
        try append(byte: 0)
        defer { count -= 1 }
        return body(region.base.assumingMemoryBound(to: CChar.self))
    }

    public func wipe() {
        region.wipe(count)
        count = 0
    }
}
