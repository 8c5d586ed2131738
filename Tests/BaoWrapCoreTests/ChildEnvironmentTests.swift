import Glibc
import Testing
@testable import BaoWrapCore

/// Inherited entries as the kernel would hand them over: C strings that
/// outlive the test's environment block, freed at the end.
final class RawEnvironment {
    private(set) var pointers: [UnsafeMutablePointer<CChar>] = []

    init(_ entries: [[UInt8]]) {
        for bytes in entries {
            let p = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            p[bytes.count] = 0
            pointers.append(p)
        }
    }

    convenience init(_ entries: [String]) { self.init(entries.map { Array($0.utf8) }) }

    var entries: [EnvironmentEntry] { pointers.map { EnvironmentEntry(UnsafePointer($0)) } }

    deinit { pointers.forEach { free($0) } }
}

private func entryBytes(_ p: UnsafeMutablePointer<CChar>?) -> [UInt8] {
    guard let p else { return [] }
    return Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
}

private func secret(_ value: [UInt8], in arena: SecretArena) throws -> Secret {
    try arena.write(capacity: max(value.count, 1)) { out in
        for (i, b) in value.enumerated() { out[i] = b }
        return value.count
    }
}

private func secrets(_ pairs: [(String, String)], arena: SecretArena) throws -> [ResolvedVariable] {
    try pairs.map { name, value in ResolvedVariable(name: name, value: try secret(Array(value.utf8), in: arena)) }
}

@Test func environmentEntry_splitsAtTheFirstEquals() {
    let raw = RawEnvironment([Array("A=b=c".utf8), Array("NO_EQUALS".utf8), Array("=x".utf8), [0x56, 0x3d, 0xff, 0x0a]])
    let e = raw.entries
    #expect(e.map(\.name) == ["A", "NO_EQUALS", "", "V"])
    #expect(e.map { Array($0.valueBytes) } == [Array("b=c".utf8), [], Array("x".utf8), [0xff, 0x0a]])
}

@Test func childEnvironment_withoutSecrets_passesTheInheritedStringsThemselves() throws {
    let raw = RawEnvironment(["PATH=/bin", "BAOWRAP_ADDR=https://x", "A=1", "BAOWRAP_TYPO=1", "DUP=1", "DUP=2"])
    let env = try ChildEnvironment(inherited: raw.entries, resolved: [], unset: [])
    let kept = [raw.pointers[0], raw.pointers[2], raw.pointers[4], raw.pointers[5]]
    #expect(env.pointers == kept.map { Optional($0) } + [nil])
    #expect(env.injectedCount == 0)
}

@Test func childEnvironment_replacesInPlace_appendsInOrder_dropsOwnAndUnset() throws {
    let arena = SecretArena()
    defer { arena.wipeAll() }
    let raw = RawEnvironment([Array("PATH=/bin".utf8), Array("DB=inherited".utf8), Array("BAOWRAP_ROLE=app".utf8),
                              Array("MIDDLE=\u{fc}".utf8), Array("SKIPPED=bao:secret/x#y".utf8), Array("DB=second".utf8),
                              [0x52, 0x41, 0x57, 0x3d, 0xff]])
    let resolved = try secrets([("NEW_B", "b-value"), ("DB", "p=a\nss"), ("NEW_A", "")], arena: arena)
    let env = try ChildEnvironment(inherited: raw.entries, resolved: resolved, unset: ["SKIPPED"])
    defer { env.wipe() }
    #expect(env.pointers.map(entryBytes) == [
        Array("PATH=/bin".utf8), Array("DB=p=a\nss".utf8), Array("MIDDLE=\u{fc}".utf8), [0x52, 0x41, 0x57, 0x3d, 0xff],
        Array("NEW_B=b-value".utf8), Array("NEW_A=".utf8), [],
    ])
    #expect(env.pointers.last! == nil)
    #expect(env.pointers[0] == raw.pointers[0] && env.pointers[3] == raw.pointers[6])
    #expect(env.injectedCount == 3)
}

@Test func childEnvironment_refusesASecretWithANulByte() throws {
    let arena = SecretArena()
    defer { arena.wipeAll() }
    let value: [UInt8] = [0x61, 0x00, 0x62]
    let resolved = [ResolvedVariable(name: "TOKEN", value: try secret(value, in: arena))]
    #expect(throws: BaoWrapError(.badResponse, "")) {
        _ = try ChildEnvironment(inherited: [], resolved: resolved, unset: [])
    }
}
