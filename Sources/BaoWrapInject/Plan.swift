import BaoWrapCore
import Foundation

/// What inject does to one pod template: the settings for it (flags with
/// its annotations on top), checked and resolved.
struct Plan {
    var image: String?
    var imageBinary = Layout.defaultImageBinary
    /// nil: every app container.
    var containers: [String]?
    var commandFor: [String: [String]] = [:]
    var projectedToken = false
    var audience = Layout.defaultAudience
    var tokenExpirationSeconds = Layout.defaultTokenExpirationSeconds
    /// baowrap's own settings, as it would get them from flags.
    var baowrap: [OptionKey: [String]] = [:]

    init(_ s: Settings) throws(BaoWrapError) {
        image = try s.value("image").map { v throws(BaoWrapError) in try Self.nonEmpty(v, s.origin("image")) }
        if let v = s.value("image-binary") {
            guard v.hasPrefix("/") else { throw BaoWrapError(.config, "\(s.origin("image-binary")) \"\(v)\" is not an absolute path") }
            imageBinary = v
        }
        let names = s.entries("container")
        containers = names.isEmpty ? nil : names
        for entry in s.entries("command-for") {
            let (name, command) = try Self.commandFor(entry, origin: s.origin("command-for"))
            commandFor[name] = command
        }
        projectedToken = try s.isOn("projected-token")
        if let v = s.value("audience") { audience = try Self.nonEmpty(v, s.origin("audience")) }
        if let v = s.value("token-expiration") {
            guard let d = DurationText.parse(v), d >= .seconds(600), d <= .seconds(Int64(UInt32.max)) else {
                throw BaoWrapError(.config, "\(s.origin("token-expiration")) \"\(v)\" is not a duration of at least 10m",
                                   hint: "the API server refuses shorter tokens; e.g. 10m or 1h")
            }
            tokenExpirationSeconds = Int(d.components.seconds)
        }
        for o in InjectOptions.passedThrough {
            guard let key = o.baowrap, let v = s.values[o.name] else { continue }
            switch o.arity {
            case .flag: baowrap[key] = [try s.isOn(o.name) ? "true" : "false"]
            case .value: baowrap[key] = [v.entries.last ?? ""]
            case .repeated: baowrap[key] = v.entries
            }
        }
        if projectedToken {
            if baowrap[.jwtFile] == nil { baowrap[.jwtFile] = [Layout.tokenPath] }
            // A later hand edit of the projection that changes the audience
            // then fails before any network call, with a clear message.
            if baowrap[.expectAudience] == nil { baowrap[.expectAudience] = [audience] }
        }
    }

    /// The BAOWRAP_* variables to set, in baowrap's option-table order.
    /// List settings are one entry a line, as baowrap reads them.
    var environment: [(name: String, value: String)] {
        Options.table.compactMap { o in
            guard let v = baowrap[o.key], let name = o.variables.first else { return nil }
            return (name, o.arity == .repeated ? v.joined(separator: "\n") : v.last ?? "")
        }
    }

    private static func nonEmpty(_ v: String, _ origin: String) throws(BaoWrapError) -> String {
        guard !v.trimmingCharacters(in: .whitespaces).isEmpty else { throw BaoWrapError(.config, "\(origin) is empty") }
        return v
    }

    /// `NAME=["entry","arg"]`: a JSON array of strings, as in a Dockerfile's
    /// exec-form ENTRYPOINT.
    private static func commandFor(_ entry: String, origin: String) throws(BaoWrapError) -> (String, [String]) {
        let example = "--command-for app='[\"/docker-entrypoint.sh\",\"nginx\"]'"
        guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
            throw BaoWrapError(.config, "\(origin) \"\(entry)\" is not NAME=JSON", hint: example)
        }
        let json = entry[entry.index(after: eq)...]
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(json.utf8)),
              let command = parsed as? [String], !command.isEmpty else {
            throw BaoWrapError(.config, "\(origin) \"\(entry)\": the command is not a non-empty JSON array of strings", hint: example)
        }
        return (String(entry[..<eq]), command)
    }
}
