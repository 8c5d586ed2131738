/// A small JSON reader that never copies string contents out of the buffer
/// it reads. Parsing produces a tape of tokens (kind + byte offsets); string
/// values are unescaped only on request, straight into a `SecretArena`, so
/// secret values go from the locked response body to locked storage with no
/// Swift `String` in between. Object keys are compared in place as well,
/// because keys nested inside a secret value are part of the secret.
///
/// Strict RFC 8259 grammar with a nesting limit; bytes that are not UTF-8
/// inside strings are passed through untouched. Every malformed input is a
/// `JSONError`, never a crash (Tests/BaoWrapCoreTests/JSONTests.swift feeds
/// it random bytes).
struct JSONDocument {
    enum Kind: UInt8 { case object, array, string, number, `true`, `false`, null }

    struct Token {
        var kind: Kind
        /// Strings: the bytes between the quotes. Others: the whole value.
        var start: Int32
        var end: Int32
        /// Index of the token after this value's subtree.
        var next: Int32
        var hasEscapes: Bool
    }

    struct Error: Swift.Error, Equatable {
        let offset: Int
        let reason: String
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var tape: [Token] = []
    static let maxDepth = 64

    /// The value the document consists of.
    var root: Int { 0 }

    init(parsing bytes: UnsafeRawBufferPointer) throws(JSONDocument.Error) {
        guard bytes.count < Int(Int32.max) else { throw Error(offset: 0, reason: "document too large") }
        self.bytes = bytes
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.pos != bytes.count { throw Error(offset: parser.pos, reason: "trailing characters after the JSON value") }
        tape = parser.tape
    }

    // MARK: navigation

    func kind(_ i: Int) -> Kind { tape[i].kind }

    /// (key token, value token) pairs of the object at `i`, in document order.
    func members(_ i: Int) -> [(key: Int, value: Int)] {
        guard tape[i].kind == .object else { return [] }
        var out: [(Int, Int)] = []
        var k = i + 1
        let end = Int(tape[i].next)
        while k < end {
            let v = k + 1
            out.append((k, v))
            k = Int(tape[v].next)
        }
        return out
    }

    func elements(_ i: Int) -> [Int] {
        guard tape[i].kind == .array else { return [] }
        var out: [Int] = []
        var k = i + 1
        let end = Int(tape[i].next)
        while k < end {
            out.append(k)
            k = Int(tape[k].next)
        }
        return out
    }

    /// The value of member `key` of the object at `i`; the last one wins on
    /// duplicates, as in Go's encoding/json which OpenBao uses.
    func member(_ i: Int, _ key: String) -> Int? {
        var found: Int?
        for m in members(i) where stringEquals(m.key, key) { found = m.value }
        return found
    }

    /// Follows a path of object keys from the root.
    func path(_ keys: String...) -> Int? {
        var i = root
        for k in keys {
            guard let next = member(i, k) else { return nil }
            i = next
        }
        return i
    }

    /// Compares the string token `i`, unescaped, with `s`, without copying it.
    func stringEquals(_ i: Int, _ s: String) -> Bool {
        let t = tape[i]
        guard t.kind == .string else { return false }
        let target = Array(s.utf8)
        if !t.hasEscapes {
            guard target.count == Int(t.end - t.start) else { return false }
            for (n, b) in target.enumerated() where bytes[Int(t.start) + n] != b { return false }
            return true
        }
        var same = true
        var pos = 0
        Unescaper.run(bytes, from: Int(t.start), to: Int(t.end)) { b in
            if pos >= target.count || target[pos] != b { same = false }
            pos += 1
        }
        return same && pos == target.count
    }

    /// The string token `i` as a Swift `String`. Only for text that is not
    /// secret: error messages, mount types, metadata, key names.
    func string(_ i: Int) -> String? {
        let t = tape[i]
        guard t.kind == .string else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(Int(t.end - t.start))
        Unescaper.run(bytes, from: Int(t.start), to: Int(t.end)) { out.append($0) }
        return String(decoding: out, as: UTF8.self)
    }

    func int(_ i: Int) -> Int? {
        let t = tape[i]
        guard t.kind == .number else { return nil }
        var v = 0
        for p in Int(t.start)..<Int(t.end) {
            let b = bytes[p]
            if p == Int(t.start) && b == UInt8(ascii: "-") { continue }
            guard b >= 0x30 && b <= 0x39 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b - 0x30))
            if o1 || o2 { return nil }
            v = a
        }
        return bytes[Int(t.start)] == UInt8(ascii: "-") ? -v : v
    }

    func bool(_ i: Int) -> Bool? {
        switch tape[i].kind {
        case .true: return true
        case .false: return false
        default: return nil
        }
    }

    /// Strings of the array at `i`, e.g. OpenBao's `errors`.
    func strings(_ i: Int) -> [String] { elements(i).compactMap { string($0) } }

    // MARK: secret output

    /// Writes the value at `i` into `arena`: a string unescaped, anything else
    /// as compact JSON text (`42`, `true`, `null`, `{"a":1}`), as the spec
    /// renders non-string values.
    func secret(_ i: Int, in arena: SecretArena) throws(BaoWrapError) -> Secret {
        let t = tape[i]
        let capacity = Int(t.end - t.start)
        return try arena.write(capacity: max(capacity, 1)) { out in
            var n = 0
            if t.kind == .string {
                Unescaper.run(bytes, from: Int(t.start), to: Int(t.end)) { b in out[n] = b; n += 1 }
            } else {
                compact(from: Int(t.start), to: Int(t.end)) { b in out[n] = b; n += 1 }
            }
            return n
        }
    }

    /// Copies the source text without insignificant whitespace.
    private func compact(from: Int, to: Int, _ emit: (UInt8) -> Void) {
        var inString = false
        var escaped = false
        for p in from..<to {
            let b = bytes[p]
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                emit(b)
            } else if b == UInt8(ascii: "\"") {
                inString = true
                emit(b)
            } else if !Parser.isWhitespace(b) {
                emit(b)
            }
        }
    }
}

/// Decodes the escapes of a JSON string body; the grammar was checked by the
/// parser, so this only maps bytes.
enum Unescaper {
    static func run(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int, _ emit: (UInt8) -> Void) {
        var p = from
        while p < to {
            let b = bytes[p]
            if b != UInt8(ascii: "\\") { emit(b); p += 1; continue }
            let e = bytes[p + 1]
            p += 2
            switch e {
            case UInt8(ascii: "b"): emit(0x08)
            case UInt8(ascii: "f"): emit(0x0c)
            case UInt8(ascii: "n"): emit(0x0a)
            case UInt8(ascii: "r"): emit(0x0d)
            case UInt8(ascii: "t"): emit(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(bytes, p)
                p += 4
                if (0xD800...0xDBFF).contains(scalar), p + 6 <= to, bytes[p] == UInt8(ascii: "\\"), bytes[p + 1] == UInt8(ascii: "u") {
                    let low = hex4(bytes, p + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        p += 6
                    }
                }
                // A lone surrogate becomes U+FFFD, as Go's encoder does.
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                for c in UTF8.encode(u)! { emit(c) }
            default: emit(e)  // \" \\ \/
            }
        }
    }

    private static func hex4(_ bytes: UnsafeRawBufferPointer, _ p: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 4 | UInt32(Parser.hexValue(bytes[p + i])!) }
        return v
    }
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    var tape: [JSONDocument.Token] = []

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0a || b == 0x0d || b == 0x09 }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    mutating func skipWhitespace() {
        while pos < bytes.count && Parser.isWhitespace(bytes[pos]) { pos += 1 }
    }

    func fail(_ reason: String) -> JSONDocument.Error { JSONDocument.Error(offset: pos, reason: reason) }

    mutating func push(_ kind: JSONDocument.Kind, _ start: Int, _ end: Int, escapes: Bool = false) -> Int {
        tape.append(.init(kind: kind, start: Int32(start), end: Int32(end), next: Int32(tape.count + 1), hasEscapes: escapes))
        return tape.count - 1
    }

    mutating func value(depth: Int) throws(JSONDocument.Error) {
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): try container(object: true, depth: depth)
        case UInt8(ascii: "["): try container(object: false, depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true", .true)
        case UInt8(ascii: "f"): try literal("false", .false)
        case UInt8(ascii: "n"): try literal("null", .null)
        case UInt8(ascii: "-"), 0x30...0x39: try number()
        default: throw fail("unexpected character")
        }
    }

    mutating func container(object: Bool, depth: Int) throws(JSONDocument.Error) {
        guard depth < JSONDocument.maxDepth else { throw fail("nesting deeper than \(JSONDocument.maxDepth)") }
        let start = pos
        let index = push(object ? .object : .array, start, start)
        let close = UInt8(ascii: object ? "}" : "]")
        pos += 1
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == close {
            pos += 1
        } else {
            while true {
                if object {
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    try string()
                    skipWhitespace()
                    guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    pos += 1
                    skipWhitespace()
                }
                try value(depth: depth + 1)
                skipWhitespace()
                guard pos < bytes.count else { throw fail("unexpected end of input") }
                if bytes[pos] == UInt8(ascii: ",") {
                    pos += 1
                    skipWhitespace()
                    continue
                }
                guard bytes[pos] == close else { throw fail(object ? "expected ',' or '}'" : "expected ',' or ']'") }
                pos += 1
                break
            }
        }
        tape[index].end = Int32(pos)
        tape[index].next = Int32(tape.count)
    }

    mutating func string() throws(JSONDocument.Error) {
        pos += 1
        let start = pos
        var escapes = false
        while true {
            guard pos < bytes.count else { throw fail("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw fail("control character in string") }
            if b == UInt8(ascii: "\\") {
                escapes = true
                guard pos + 1 < bytes.count else { throw fail("unterminated escape") }
                switch bytes[pos + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    pos += 2
                case UInt8(ascii: "u"):
                    guard pos + 6 <= bytes.count else { throw fail("short \\u escape") }
                    for i in 2..<6 where Parser.hexValue(bytes[pos + i]) == nil { throw fail("bad \\u escape") }
                    pos += 6
                default:
                    throw fail("bad escape")
                }
                continue
            }
            pos += 1
        }
        _ = push(.string, start, pos, escapes: escapes)
        pos += 1
    }

    mutating func literal(_ word: StaticString, _ kind: JSONDocument.Kind) throws(JSONDocument.Error) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of input") }
        for i in 0..<n where bytes[pos + i] != word.utf8Start[i] { throw fail("invalid literal") }
        _ = push(kind, pos, pos + n)
        pos += n
    }

    mutating func number() throws(JSONDocument.Error) {
        let start = pos
        func digit(_ p: Int) -> Bool { p < bytes.count && bytes[p] >= 0x30 && bytes[p] <= 0x39 }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        guard digit(pos) else { throw fail("invalid number") }
        if bytes[pos] == 0x30 { pos += 1 } else { while digit(pos) { pos += 1 } }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digit(pos) else { throw fail("invalid number") }
            while digit(pos) { pos += 1 }
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard digit(pos) else { throw fail("invalid number") }
            while digit(pos) { pos += 1 }
        }
        _ = push(.number, start, pos)
    }
}
