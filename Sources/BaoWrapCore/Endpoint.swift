/// An OpenBao or broker address: scheme, host, port and an optional path
/// prefix under which the OpenBao API is served (`/openbao` on a broker).
public struct Endpoint: Equatable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }
    public let scheme: Scheme
    /// As written in the URL; IPv6 literals keep their brackets.
    public let host: String
    public let port: Int
    /// Empty, or starts with `/` and has no trailing `/`.
    public let pathPrefix: String

    public var description: String { "\(scheme.rawValue)://\(host):\(port)\(pathPrefix)" }

    public static func parse(_ text: String, option: String) throws(BaoWrapError) -> Endpoint {
        func bad(_ why: String) -> BaoWrapError {
            .config("\(option) \"\(text)\" is not a usable URL: \(why)", hint: "e.g. https://openbao.openbao.svc:8200")
        }
        let schemeText = text.prefix { $0 != ":" }
        guard text.dropFirst(schemeText.count).hasPrefix("://") else { throw bad("no scheme") }
        guard let scheme = Scheme(rawValue: String(schemeText).asciiLowercased) else {
            throw bad("scheme must be https (or http in the development profile)")
        }
        let rest = text.dropFirst(schemeText.count + 3)
        guard !rest.contains(where: { $0 == "?" || $0 == "#" || $0 == "@" || $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }) else {
            throw bad("query, fragment, user info and spaces are not allowed")
        }
        let authority = rest.prefix { $0 != "/" }
        var prefix = String(rest.dropFirst(authority.count))
        while prefix.hasSuffix("/") { prefix.removeLast() }
        var host = Substring(authority)
        var portText: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw bad("unterminated IPv6 literal") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw bad("junk after IPv6 literal") }
            host = host[...close]
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty, host != "[]" else { throw bad("no host") }
        let isIPv6 = host.hasPrefix("[")
        let hostIsValid = isIPv6
            ? host.dropFirst().dropLast().unicodeScalars.allSatisfy { $0.isASCIIHexDigit || $0 == ":" || $0 == "." }
            : DNSName.isValid(String(host))
        guard hostIsValid else { throw bad("host \"\(host)\" is not a DNS name or an IP address") }
        let forbidden: Set<Unicode.Scalar> = ["\"", "<", ">", "\\", "^", "`", "{", "|", "}"]
        guard prefix.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && !forbidden.contains($0) }) else {
            throw bad("the path may hold only URL characters (percent-encode others)")
        }
        let port: Int
        if let portText {
            guard portText.count <= 5, portText.allSatisfy(\.isASCIIDigit), let p = Int(portText), (1...65535).contains(p) else {
                throw bad("bad port \"\(portText)\"")
            }
            port = p
        } else {
            port = scheme == .https ? 443 : 80
        }
        return Endpoint(scheme: scheme, host: String(host), port: port, pathPrefix: prefix)
    }
}

/// API paths as they go into a URL. Secret paths may hold any printable
/// character (unicode, quotes, brackets); everything outside RFC 3986's
/// path characters is percent-encoded, so curl sends what OpenBao decodes
/// back to the path the user wrote.
enum URLPath {
    static func escape(_ path: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in path.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"),
                 UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
                 UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
                 UInt8(ascii: ":"), UInt8(ascii: "@"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xf)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
