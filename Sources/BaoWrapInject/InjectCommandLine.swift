import BaoWrapCore

/// What `baowrapctl` was asked to do.
public enum CtlCommand {
    case inject(Settings)
    case version
    case help
}

/// Parses baowrapctl's arguments (without argv[0]) against
/// `InjectOptions.table`: `--name VALUE`, `--name=VALUE`, `-f VALUE`.
public enum InjectCommandLine {
    public static func parse(_ args: [String]) throws(BaoWrapError) -> CtlCommand {
        guard let sub = args.first else {
            throw BaoWrapError(.config, "no command", hint: "baowrapctl inject -f FILE --image IMAGE ...; baowrapctl help")
        }
        switch sub {
        case "help", "--help", "-h": return .help
        case "version", "--version": return .version
        case "inject": break
        default: throw BaoWrapError(.config, "unknown command \"\(sub)\"", hint: "baowrapctl inject ...; baowrapctl help")
        }
        var settings = Settings()
        var i = 1
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg == "--help" || arg == "-h" { return .help }
            let name: String
            var inline: String?
            if arg.hasPrefix("--") {
                let body = arg.dropFirst(2)
                if let eq = body.firstIndex(of: "=") {
                    name = String(body[..<eq])
                    inline = String(body[body.index(after: eq)...])
                } else {
                    name = String(body)
                }
            } else if arg.count == 2, arg.hasPrefix("-"), let o = InjectOptions.table.first(where: { $0.short == arg.last }) {
                name = o.name
            } else {
                throw BaoWrapError(.config, "unexpected argument \"\(arg)\"", hint: "inject reads its manifest with -f FILE")
            }
            guard let option = InjectOptions.named(name) else {
                throw BaoWrapError(.config, "unknown option \(arg)", hint: "baowrapctl help lists every option")
            }
            switch option.arity {
            case .flag:
                guard inline == nil else { throw BaoWrapError(.config, "--\(name) takes no value") }
                settings.append(option, "true", origin: "--" + name)
            case .value, .repeated:
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard i < args.count else { throw BaoWrapError(.config, "--\(name) needs a value (\(option.valueName))") }
                    value = args[i]
                    i += 1
                }
                settings.append(option, value, origin: "--" + name)
            }
        }
        return .inject(settings)
    }
}
