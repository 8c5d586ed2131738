import BaoWrapCore
import Foundation

/// Raw inject settings, keyed by option name, each remembering where it
/// came from so an error can say which flag or annotation to fix. A flag
/// option holds "true" or "false"; a repeated one holds its entries.
public struct Settings: Sendable {
    struct Value: Sendable {
        var entries: [String]
        /// "--role" or "annotation baowrap.openbao.org/role".
        var origin: String
    }

    private(set) var values: [String: Value] = [:]

    public init() {}

    mutating func set(_ option: InjectOption, _ entries: [String], origin: String) {
        values[option.name] = Value(entries: entries, origin: origin)
    }

    /// The CLI adds one entry at a time; repeated options accumulate.
    mutating func append(_ option: InjectOption, _ entry: String, origin: String) {
        let old = option.arity == .repeated ? values[option.name]?.entries ?? [] : []
        values[option.name] = Value(entries: old + [entry], origin: origin)
    }

    /// These settings with `overrides` on top: a workload's annotation
    /// replaces the flag as a whole (a `secrets` annotation replaces every
    /// `--secret`).
    func overridden(by overrides: Settings) -> Settings {
        var s = self
        s.values.merge(overrides.values) { _, new in new }
        return s
    }

    func entries(_ name: String) -> [String] { values[name]?.entries ?? [] }

    func value(_ name: String) -> String? { values[name]?.entries.last }

    func origin(_ name: String) -> String { values[name]?.origin ?? "--" + name }

    /// A flag option's value; annotations spell booleans as baowrap's
    /// environment variables do.
    func isOn(_ name: String) throws(BaoWrapError) -> Bool {
        guard let v = value(name) else { return false }
        return try Self.bool(v, origin: origin(name))
    }

    static func bool(_ v: String, origin: String) throws(BaoWrapError) -> Bool {
        switch v.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw BaoWrapError(.config, "\(origin) \"\(v)\" is not true or false")
        }
    }

    /// Entries of a list-valued annotation or variable: separated by
    /// newlines or commas, as baowrap reads BAOWRAP_SECRETS.
    static func listEntries(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "\n" || $0 == "," || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}

extension Settings {
    /// `-f FILE`; nil reads stdin.
    public var input: String? { value("filename") }
    /// `-o FILE`; nil writes stdout.
    public var output: String? { value("output") }
}
