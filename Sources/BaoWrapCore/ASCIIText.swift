// Text helpers limited to ASCII. Everything baowrap compares or transforms
// (option values, env names, header fields, curl messages) is ASCII, so
// ASCII rules are the exact ones (a Unicode-aware upper-casing would turn
// "ı" into "I" in a variable name), and substring search from the standard
// library lives in _StringProcessing, about 1 MB of the static binary.

extension Unicode.Scalar {
    var isASCIIDigit: Bool { value >= 0x30 && value <= 0x39 }
    var isASCIILetter: Bool { (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7a }
    var isASCIIHexDigit: Bool { isASCIIDigit || ((value | 0x20) >= 0x61 && (value | 0x20) <= 0x66) }
}

extension Character {
    var isASCIIDigit: Bool { unicodeScalars.count == 1 && unicodeScalars.first!.isASCIIDigit }
}

extension String {
    var asciiLowercased: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0.value >= 0x41 && $0.value <= 0x5a ? Unicode.Scalar($0.value + 0x20)! : $0 }))
    }

    var asciiUppercased: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0.value >= 0x61 && $0.value <= 0x7a ? Unicode.Scalar($0.value - 0x20)! : $0 }))
    }

    /// Substring search over UTF-8 bytes.
    func includes(_ needle: String) -> Bool {
        let hay = Array(utf8)
        let n = Array(needle.utf8)
        guard !n.isEmpty else { return true }
        guard hay.count >= n.count else { return false }
        for i in 0...(hay.count - n.count) where hay[i] == n[0] && Array(hay[i..<(i + n.count)]) == n {
            return true
        }
        return false
    }

    /// Every occurrence of `needle` replaced, compared as UTF-8 bytes.
    func substituting(_ needle: String, with replacement: String) -> String {
        let hay = Array(utf8)
        let n = Array(needle.utf8)
        guard !n.isEmpty, hay.count >= n.count else { return self }
        var out: [UInt8] = []
        var i = 0
        while i < hay.count {
            if i + n.count <= hay.count && hay[i..<(i + n.count)].elementsEqual(n) {
                out += replacement.utf8
                i += n.count
            } else {
                out.append(hay[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
