import BaoWrapCore
import Yams

/// Checks a wrapped container's baowrap configuration with baowrap's own
/// `Config.load`, so a bad address, profile violation or secret reference
/// fails at inject time instead of as a crash-looping pod.
enum ConfigCheck {
    /// Paths inside the pod; they cannot be checked on this machine.
    static let podFiles: Set<OptionKey> = [.caCert, .brokerCACert, .clientCert, .clientKey]

    /// `env` is the container's env list after the rewrite; settings inject
    /// did not write are read from it. A setting the container takes from
    /// `valueFrom` is unknown until the pod runs, so then only the secret
    /// references are checked.
    static func check(_ plan: Plan, env: [Node]) throws(BaoWrapError) {
        var flags = plan.baowrap.filter { !podFiles.contains($0.key) }
        var unknowable = false
        for spec in Options.table where plan.baowrap[spec.key] == nil && !podFiles.contains(spec.key) {
            guard let entry = spec.variables.lazy.compactMap({ name in env.first { $0["name"]?.text == name } }).first else { continue }
            guard let value = entry["value"]?.text, entry["valueFrom"] == nil else {
                unknowable = true
                continue
            }
            if spec.key == .token {
                unknowable = true  // baowrap reads it from its environment only
            } else if !value.isEmpty {
                flags[spec.key] = spec.arity == .repeated ? Settings.listEntries(value) : [value]
            }
        }
        for key in [OptionKey.secret, .fromPath] {
            for entry in plan.baowrap[key] ?? [] where entry.contains(",") {
                throw BaoWrapError(.config, "\"\(entry)\" cannot go into \(Options.spec(key).variables[0]): baowrap splits that variable at commas",
                                   hint: "put the reference into the container's env instead: NAME: bao:MOUNT/PATH#KEY")
            }
        }
        if unknowable {
            for entry in flags[.secret] ?? [] { _ = try SecretBinding.parse(entry: entry, origin: .variableList) }
        } else {
            _ = try Config.load(flags: flags, environment: [])
        }
    }
}
