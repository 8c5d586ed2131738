import BaoWrapCore

/// One setting of `baowrapctl inject`: a flag and, for most, an annotation
/// that sets it for one workload.
public struct InjectOption: Sendable {
    public enum Arity: Sendable { case flag, value, repeated }

    /// Long flag without the dashes.
    public let name: String
    public let short: Character?
    public let arity: Arity
    public let valueName: String
    public let help: String
    /// The annotation key after `baowrap.openbao.org/`; nil for flags that
    /// make no sense per workload (input, output file).
    public let annotation: String?
    /// A baowrap option: its value goes into the container's environment
    /// as the option's first variable (BAOWRAP_ROLE for --role).
    public let baowrap: OptionKey?
}

/// Every setting inject takes: its own, then every baowrap option with a
/// flag, read from baowrap's option table so the flag, variable and
/// annotation names cannot drift from what the binary reads.
public enum InjectOptions {
    static let own: [InjectOption] = [
        .init(name: "filename", short: "f", arity: .value, valueName: "FILE",
              help: "manifest to read (YAML, multi-document, or JSON); - or no flag reads stdin",
              annotation: nil, baowrap: nil),
        .init(name: "output", short: "o", arity: .value, valueName: "FILE",
              help: "write the result to FILE atomically (may be the input file) instead of stdout",
              annotation: nil, baowrap: nil),
        .init(name: "image", short: nil, arity: .value, valueName: "IMAGE",
              help: "the baowrap init image; needed when a pod template has no \(Layout.initContainer) init container yet",
              annotation: "image", baowrap: nil),
        .init(name: "image-binary", short: nil, arity: .value, valueName: "PATH",
              help: "baowrap's path inside the init image [default: \(Layout.defaultImageBinary)]",
              annotation: "image-binary", baowrap: nil),
        .init(name: "container", short: nil, arity: .repeated, valueName: "NAME",
              help: "wrap only this container (repeatable) [default: every container, never init containers]",
              annotation: "containers", baowrap: nil),
        .init(name: "command-for", short: nil, arity: .repeated, valueName: "NAME=JSON",
              help: "the command for container NAME when the manifest has none, as a JSON array: the image's ENTRYPOINT, e.g. '[\"/docker-entrypoint.sh\",\"nginx\"]'",
              annotation: nil, baowrap: nil),
        .init(name: "projected-token", short: nil, arity: .flag, valueName: "",
              help: "mount a projected ServiceAccount token for OpenBao at \(Layout.tokenPath) and point baowrap at it",
              annotation: "projected-token", baowrap: nil),
        .init(name: "audience", short: nil, arity: .value, valueName: "AUD",
              help: "audience of the projected token [default: \(Layout.defaultAudience)]",
              annotation: "audience", baowrap: nil),
        .init(name: "token-expiration", short: nil, arity: .value, valueName: "DURATION",
              help: "lifetime of the projected token, at least 10m [default: 10m]",
              annotation: "token-expiration", baowrap: nil),
    ]

    /// Passed through to baowrap. Repeated options take plural annotation
    /// names (`secrets` holds `NAME=REF` lines).
    static let passedThrough: [InjectOption] = Options.table.compactMap { o in
        guard let flag = o.flag, o.onlyFor == nil else { return nil }
        let arity: InjectOption.Arity = switch o.arity {
        case .flag: .flag
        case .value: .value
        case .repeated: .repeated
        }
        let defaultText = o.defaultText.isEmpty ? "" : " [baowrap's default: \(o.defaultText)]"
        return InjectOption(name: flag, short: nil, arity: arity, valueName: o.valueName,
                            help: o.help + defaultText,
                            annotation: o.arity == .repeated ? flag + "s" : flag, baowrap: o.key)
    }

    public static let table: [InjectOption] = own + passedThrough

    /// `baowrap.openbao.org/inject: "false"` leaves a workload alone.
    static let skipAnnotation = "inject"

    static func named(_ name: String) -> InjectOption? { table.first { $0.name == name } }

    static func annotated(_ key: String) -> InjectOption? { table.first { $0.annotation == key } }

    public static let usage = """
        Usage:
          baowrapctl inject [-f FILE|-] [-o FILE] [--image IMAGE] [OPTIONS]
                                  rewrite the Kubernetes manifests in FILE so their pods start
                                  through baowrap (docs/inject.md)
          baowrapctl version      print the version
          baowrapctl help         show this help
        """

    /// `--help` text, rendered from the table.
    public static var helpText: String {
        var lines = [usage, "", "inject options:"]
        for o in table {
            if o.name == passedThrough.first?.name {
                lines.append("")
                lines.append("baowrap options, written into each wrapped container's environment:")
            }
            var head = "  " + (o.short.map { "-\($0), " } ?? "") + "--" + o.name
            if o.arity != .flag { head += " " + o.valueName }
            lines.append(head)
            lines.append("      " + o.help)
            var env = o.baowrap.flatMap { Options.spec($0).variables.first }.map { "env: \($0)" } ?? ""
            if let a = o.annotation {
                env += (env.isEmpty ? "" : "; ") + "annotation: \(Layout.annotationPrefix)\(a)"
            }
            if !env.isEmpty { lines.append("      " + env) }
        }
        lines.append("")
        lines.append("Annotations on a workload or its pod template override the flags for that workload;")
        lines.append("\(Layout.annotationPrefix)\(skipAnnotation): \"false\" leaves it unchanged.")
        lines.append("Exit status: 0 when the output was written; 125 on any error, with nothing written.")
        return lines.joined(separator: "\n") + "\n"
    }
}
