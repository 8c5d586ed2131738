/// A reference to one key of one secret: `[bao:|vault:]MOUNT/PATH#KEY[#VERSION]`.
///
/// The path is kept as the user wrote it (`location`); which part of it is
/// the mount, and whether the mount is KV v1 or v2, is decided against the
/// server by the resolver. A path written in the KV v2 API form
/// (`secret/data/app`) is recognised up front and needs no lookup.
public struct SecretRef: Hashable, Sendable, CustomStringConvertible {
    /// `MOUNT/PATH` as written, without a `bao:`/`vault:` prefix.
    public let location: String
    public let key: String
    /// A pinned KV v2 version.
    public let version: Int?

    public var description: String {
        location + "#" + key + (version.map { "#\($0)" } ?? "")
    }

    public static let prefixes = ["bao:", "vault:"]

    /// Parses a reference. `text` may carry a `bao:` or `vault:` prefix.
    public static func parse(_ text: String) throws(BaoWrapError) -> SecretRef {
        var body = Substring(text)
        for p in prefixes where body.hasPrefix(p) {
            body = body.dropFirst(p.count)
            break
        }
        // A second prefix is a typo; as a mount name it would also make the
        // reference read differently each time it is written out.
        if prefixes.contains(where: { body.hasPrefix($0) }) {
            throw .config("secret reference \"\(text)\" has its bao:/vault: prefix twice")
        }
        let parts = body.split(separator: "#", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else {
            throw .config("malformed secret reference \"\(text)\"", hint: "write MOUNT/PATH#KEY or MOUNT/PATH#KEY#VERSION, e.g. secret/app/db#password")
        }
        let location = try validateLocation(String(parts[0]), in: text)
        let key = String(parts[1])
        guard !key.isEmpty else { throw .config("secret reference \"\(text)\" has an empty key", hint: "add #KEY after the path") }
        guard key.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
            throw .config("secret reference \"\(text)\" has a control character in its key")
        }
        var version: Int?
        if parts.count == 3 {
            guard let v = Int(parts[2]), v > 0, parts[2].allSatisfy({ $0.isASCIIDigit }) else {
                throw .config("secret reference \"\(text)\" has a bad version \"\(parts[2])\"", hint: "a version is a positive integer, e.g. #3")
            }
            version = v
        }
        return SecretRef(location: location, key: key, version: version)
    }

    /// Checks `MOUNT/PATH` (for references and for --from-path).
    static func validateLocation(_ location: String, in text: String) throws(BaoWrapError) -> String {
        guard location.split(separator: "/", omittingEmptySubsequences: false).count >= 2 else {
            throw .config("secret reference \"\(text)\" needs a mount and a path", hint: "e.g. secret/app/db#password")
        }
        if let problem = pathProblem(location) { throw .config("secret reference \"\(text)\" \(problem)") }
        return location
    }

    /// Why `path` cannot be one OpenBao API path (a secret location, an
    /// auth mount, a namespace), if it cannot.
    static func pathProblem(_ path: String) -> String? {
        for s in path.split(separator: "/", omittingEmptySubsequences: false) {
            if s.isEmpty { return "has an empty path segment (leading, trailing or double /)" }
            if s == "." || s == ".." { return "contains a . or .. segment" }
        }
        let forbidden: Set<Unicode.Scalar> = ["?", "%", "\\", "#"]
        guard path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f && !forbidden.contains($0) }) else {
            return "contains whitespace, a control character, ?, #, % or \\"
        }
        return nil
    }

    /// True when the path says `MOUNT/data/...`: the KV v2 API form, which
    /// names the mount and the engine version without a lookup.
    static func isV2APIForm(_ location: String) -> Bool {
        let segments = location.split(separator: "/")
        return segments.count >= 3 && segments[1] == "data"
    }
}

/// `--secret NAME=REF` and `--from-path PREFIX=PATH` entries, and `bao:`
/// references found in inherited variables.
public struct SecretBinding: Hashable, Sendable {
    public enum Origin: Hashable, Sendable {
        case flag
        case variableList
        /// An inherited variable whose value was `bao:REF` or `vault:REF`.
        case inherited
    }
    public let name: String
    public let ref: SecretRef
    public let origin: Origin

    /// The reference as `check` and logs show it: the path hashed unless
    /// paths may be shown.
    public func source(showPaths: Bool) -> String {
        (showPaths ? ref.location : PathHash.label(ref.location)) + "#" + ref.key + (ref.version.map { "#\($0)" } ?? "")
    }

    /// One `NAME=REF` entry of `--secret` or `BAOWRAP_SECRETS`. Public so
    /// `baowrapctl inject` refuses exactly what baowrap would refuse.
    public static func parse(entry: String, origin: Origin) throws(BaoWrapError) -> SecretBinding {
        guard let eq = entry.firstIndex(of: "=") else {
            throw .config("--secret entry \"\(entry)\" is not NAME=REF", hint: "e.g. --secret DB_PASSWORD=secret/app/db#password")
        }
        let name = String(entry[..<eq]).trimmingSpaces
        guard EnvName.isValid(name) else {
            throw .config("--secret entry \"\(entry)\": \"\(name)\" is not a valid variable name", hint: "letters, digits and _, not starting with a digit")
        }
        guard !EnvName.isReserved(name) else {
            throw .config("--secret entry \"\(entry)\": BAOWRAP_* variables are baowrap's own and never reach the command")
        }
        let ref: SecretRef
        do { ref = try SecretRef.parse(String(entry[entry.index(after: eq)...]).trimmingSpaces) } catch { throw error.with(variable: name) }
        return SecretBinding(name: name, ref: ref, origin: origin)
    }
}

public struct PathBinding: Hashable, Sendable {
    public let prefix: String
    /// `MOUNT/PATH` of the secret whose every key becomes a variable.
    public let location: String

    /// The variable name a key becomes: PREFIX + key upper-cased, every
    /// character outside [A-Za-z0-9_] replaced by `_`.
    public func variableName(forKey key: String) -> String {
        prefix + String(String.UnicodeScalarView(key.asciiUppercased.unicodeScalars.map { s in
            s.isASCIILetter || s.isASCIIDigit || s == "_" ? s : "_"
        }))
    }

    public func source(showPaths: Bool) -> String {
        (showPaths ? location : PathHash.label(location)) + "#*"
    }

    /// Why a key's variable name cannot be used, if it cannot: without a
    /// prefix, a key may start with a digit or be empty.
    static func problem(name: String, key: String, location: String) -> BaoWrapError? {
        if !EnvName.isValid(name) {
            return BaoWrapError(.config, "key \"\(key)\" of \(location) does not make a valid variable name (\"\(name)\")",
                                hint: "give --from-path a PREFIX that starts with a letter or _")
        }
        if EnvName.isReserved(name) {
            return BaoWrapError(.config, "key \"\(key)\" of \(location) makes a BAOWRAP_* name, which is never passed on",
                                hint: "use another --from-path prefix")
        }
        return nil
    }
}

enum EnvName {
    /// POSIX portable variable names: what a shell can `export`.
    static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.isASCIILetter else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.isASCIILetter || $0.isASCIIDigit }
    }

    static func isValidPrefix(_ prefix: String) -> Bool { prefix.isEmpty || isValid(prefix) }

    /// baowrap's own settings: removed from the child's environment, so a
    /// secret cannot be delivered under such a name.
    static func isReserved(_ name: String) -> Bool { name.hasPrefix("BAOWRAP_") }
}
