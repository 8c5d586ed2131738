import CBaoWrap

/// One argv or environ entry, byte for byte as the kernel handed it over.
/// Never round-tripped through `String`, so non-UTF-8 bytes survive.
public struct ByteString: Hashable, Sendable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ s: String) { self.bytes = Array(s.utf8) }

    init(cString p: UnsafePointer<CChar>) {
        let n = strlenBytes(p)
        bytes = Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// Lossy, for messages only.
    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

@inline(__always) private func strlenBytes(_ p: UnsafePointer<CChar>) -> Int {
    var n = 0
    while p[n] != 0 { n += 1 }
    return n
}

/// One inherited environment entry: where it lives (the original string the
/// kernel put on the stack, handed to the child unchanged) and its name.
public struct EnvironmentEntry {
    public let pointer: UnsafePointer<CChar>
    public let name: String
    /// Byte offset of the value inside the entry.
    let valueOffset: Int
    let length: Int

    init(_ p: UnsafePointer<CChar>) {
        pointer = p
        length = strlenBytes(p)
        var eq = 0
        while eq < length && p[eq] != 0x3d { eq += 1 }
        name = String(decoding: UnsafeRawBufferPointer(start: p, count: eq), as: UTF8.self)
        valueOffset = min(eq + 1, length)
    }

    /// The value's bytes, viewed in place; nothing is copied.
    public var valueBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer) + valueOffset, count: length - valueOffset)
    }

    /// Zeroes the value where the kernel put it, so /proc/PID/environ and
    /// the initial stack stop showing it; for BAOWRAP_TOKEN once it has
    /// been copied into locked memory.
    public func wipeValue() {
        bw_explicit_bzero(UnsafeMutableRawPointer(mutating: pointer) + valueOffset, length - valueOffset)
    }

    /// The value as text; only for variables that are not secret (BAOWRAP_*
    /// settings, `bao:` references).
    public var value: String { String(decoding: valueBytes, as: UTF8.self) }
}

/// argv and environ as captured before `main` ran (CBaoWrap's .init_array
/// hook), so they are right even in a chroot without /proc.
public enum ProcessInput {
    public static var arguments: [ByteString] {
        let argv = bw_argv()
        return (0..<Int(bw_argc())).compactMap { i in argv?[i].map { ByteString(cString: $0) } }
    }

    /// Raw argv pointers, for handing the workload's argv to posix_spawn
    /// without a copy.
    public static var argumentPointers: [UnsafeMutablePointer<CChar>] {
        let argv = bw_argv()
        return (0..<Int(bw_argc())).compactMap { argv?[$0] }
    }

    public static var environment: [EnvironmentEntry] {
        guard let envp = bw_envp() else { return [] }
        var out: [EnvironmentEntry] = []
        var i = 0
        while let p = envp[i] {
            out.append(EnvironmentEntry(p))
            i += 1
        }
        return out
    }
}
