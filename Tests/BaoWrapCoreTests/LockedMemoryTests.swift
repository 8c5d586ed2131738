import Glibc
import Testing
@testable import BaoWrapCore

private func bytes(_ b: LockedBuffer) -> [UInt8] { b.withUnsafeBytes { Array($0) } }

@Test func buffer_growsKeepingItsBytes() throws {
    let b = try LockedBuffer(capacity: 16)
    var want: [UInt8] = []
    for i in 0..<10_000 {
        let chunk = [UInt8(i & 0xff), UInt8((i >> 8) & 0xff)]
        try chunk.withUnsafeBytes { c in _ = try b.append(c) }
        want += chunk
    }
    #expect(bytes(b) == want)
    #expect(b.region.size >= 20_000 && b.region.size % LockedRegion.pageSize == 0)
}

@Test func buffer_refusesToPassItsLimit() throws {
    let b = try LockedBuffer(capacity: 8, limit: 10)
    let twelve = [UInt8](repeating: 7, count: 12)
    #expect(try twelve.withUnsafeBytes { c in try b.append(c) } == false)
    #expect(b.count == 0)
    #expect(throws: BaoWrapError(.badResponse, "")) { try b.append("0123456789x") }
}

@Test func buffer_wipeZeroesItsBytes() throws {
    let b = try LockedBuffer()
    try b.append("s.0123456789abcdefghijkl")
    let base = b.region.base
    let n = b.count
    b.wipe()
    #expect(b.count == 0 && b.isEmpty)
    #expect(UnsafeRawBufferPointer(start: base, count: n).allSatisfy { $0 == 0 })
}

@Test func buffer_cStringTerminatorStaysInLockedMemory() throws {
    let b = try LockedBuffer()
    try b.append("abc")
    #expect(try b.withCString { strlen($0) } == 3)
    #expect(b.count == 3)
}

@Test func regions_areLockedAndExcludedFromDumps() throws {
    let r = try LockedRegion(size: 1, kind: .secret)
    #expect(r.size == LockedRegion.pageSize)
    // As root (the test machine) locking cannot be refused.
    if geteuid() == 0 { #expect(r.locked) }
    let anon = try LockedRegion(size: 1, kind: .anonymous)
    #expect(anon.kind == .anonymous)
    let flags = try vmFlags(of: anon.base)
    #expect(flags.contains("dd") && flags.contains("wf"))
    if geteuid() == 0 { #expect(flags.contains("lo")) }
}

/// The VmFlags line of the mapping holding `p`, from /proc/self/smaps.
private func vmFlags(of p: UnsafeMutableRawPointer) throws -> [Substring] {
    let text = try #require(readText("/proc/self/smaps"))
    let addr = UInt(bitPattern: p)
    var inside = false
    for line in text.split(separator: "\n") {
        if let dash = line.firstIndex(of: "-"), let lo = UInt(line[..<dash], radix: 16),
           let space = line.firstIndex(of: " "), let hi = UInt(line[line.index(after: dash)..<space], radix: 16) {
            inside = lo <= addr && addr < hi
        } else if inside && line.hasPrefix("VmFlags:") {
            return line.split(separator: " ").dropFirst().map { $0 }
        }
    }
    Issue.record("no mapping holds \(p)")
    return []
}

private func readText(_ path: String) -> String? {
    readBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

@Test func memoryLocks_countEveryRegion() throws {
    let before = MemoryLocks.regions
    try MemoryLocks.probe()
    _ = try LockedBuffer()
    #expect(MemoryLocks.regions >= before + 2)
}

@Test func arena_wipeAllZeroesEverySecret() throws {
    let arena = SecretArena()
    var secrets: [Secret] = []
    for i in 0..<300 {
        // 300 x 600 bytes span dozens of pages.
        secrets.append(try arena.write(capacity: 600) { out in
            for j in 0..<600 { out[j] = UInt8(1 + (i + j) % 200) }
            return 600
        })
    }
    #expect(secrets.allSatisfy { s in s.withUnsafeBytes { $0.allSatisfy { $0 != 0 } } })
    arena.wipeAll()
    #expect(secrets.allSatisfy { s in s.withUnsafeBytes { $0.allSatisfy { $0 == 0 } } })
}

@Test func secret_equalsComparesBytes() throws {
    let arena = SecretArena()
    let s = try arena.write(capacity: 8) { out in
        for (i, b) in "abc".utf8.enumerated() { out[i] = b }
        return 3
    }
    #expect(Array("abc".utf8).withUnsafeBytes { s.equals($0) })
    #expect(!Array("abd".utf8).withUnsafeBytes { s.equals($0) })
    #expect(!Array("abcd".utf8).withUnsafeBytes { s.equals($0) })
    #expect(Mirror(reflecting: s).children.isEmpty)
}

@Test func json_unescapesValueStraightIntoTheArena() throws {
    let body = Array(#"{"data":{"pw":"a\"b\\c\n\u00e9\ud83d\ude00","n":{"x": [1, true]}}}"#.utf8)
    let arena = SecretArena()
    try body.withUnsafeBytes { b in
        let doc = try JSONDocument(parsing: b)
        let data = try #require(doc.path("data"))
        let pw = try doc.secret(try #require(doc.member(data, "pw")), in: arena)
        #expect(Array("a\"b\\c\né😀".utf8).withUnsafeBytes { pw.equals($0) })
        let n = try doc.secret(try #require(doc.member(data, "n")), in: arena)
        #expect(Array(#"{"x":[1,true]}"#.utf8).withUnsafeBytes { n.equals($0) })
    }
}

@Test func environmentEntry_wipeValueLeavesTheName() {
    let entry = strdup("BAOWRAP_TOKEN=s.0123456789abcdefghijkl")!
    defer { free(entry) }
    let e = EnvironmentEntry(UnsafePointer(entry))
    e.wipeValue()
    #expect(String(cString: entry) == "BAOWRAP_TOKEN=")
    #expect(UnsafeRawBufferPointer(start: entry + 14, count: 24).allSatisfy { $0 == 0 })
    #expect(entry[38] == 0)
}
