/// The workload's environment block: the inherited entries in their
/// original order and bytes (pointing at the strings the kernel gave
/// baowrap, never copied), minus every BAOWRAP_* variable, with resolved
/// secrets replacing their variable in place or appended in configuration
/// order. Injected entries are built in locked memory (memfd_secret pages
/// where available: execve copies from them like any of the process's own
/// memory, while /proc/PID/mem and ptrace cannot read them) and wiped as
/// soon as the child has been spawned.
public final class ChildEnvironment {
    private var block: LockedBuffer?
    public private(set) var pointers: [UnsafeMutablePointer<CChar>?] = []
    /// Number of secret entries in the block.
    public let injectedCount: Int

    /// `unset` names variables that must not reach the child even if
    /// inherited: references that were skipped with --on-missing skip.
    public init(inherited: [EnvironmentEntry], resolved: [ResolvedVariable], unset: Set<String>) throws(BaoWrapError) {
        var byName: [String: Int] = [:]
        for (i, v) in resolved.enumerated() { byName[v.name] = i }
        injectedCount = resolved.count

        enum Slot { case inherited(UnsafePointer<CChar>), injected(Int) }
        var slots: [Slot] = []
        var placed: Set<Int> = []
        for e in inherited {
            if e.name.hasPrefix("BAOWRAP_") || unset.contains(e.name) { continue }
            if let i = byName[e.name] {
                // Duplicated names in the inherited block: the first one is
                // replaced, the rest dropped, so the child sees one value.
                if placed.insert(i).inserted { slots.append(.injected(i)) }
                continue
            }
            slots.append(.inherited(e.pointer))
        }
        for i in resolved.indices where !placed.contains(i) { slots.append(.injected(i)) }

        var offsets: [Int: Int] = [:]
        if resolved.isEmpty {
            block = nil
        } else {
            let size = resolved.reduce(0) { $0 + $1.name.utf8.count + 2 + $1.value.count }
            let b = try LockedBuffer(capacity: size)
            for (i, v) in resolved.enumerated() {
                if v.value.withUnsafeBytes({ $0.contains(0) }) {
                    throw BaoWrapError(.badResponse, "the secret's value contains a NUL byte, which no environment variable can hold",
                                       variable: v.name)
                }
                offsets[i] = b.count
                try b.append(v.name + "=")
                try v.value.withUnsafeBytes { (bytes) throws(BaoWrapError) in _ = try b.append(bytes) }
                try b.append(byte: 0)
            }
            block = b
        }
        let base = block?.region.base.assumingMemoryBound(to: CChar.self)
        pointers = slots.map { slot in
            switch slot {
            case .inherited(let p): return UnsafeMutablePointer(mutating: p)
            case .injected(let i): return base! + offsets[i]!
            }
        }
        pointers.append(nil)
    }

    /// Zeroes and unmaps the injected entries; `pointers` is emptied with
    /// them, so nothing is left pointing at the released pages.
    public func wipe() {
        block?.wipe()
        block = nil
        pointers = []
    }
}
