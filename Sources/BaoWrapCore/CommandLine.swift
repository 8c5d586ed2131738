import CBaoWrap
import Glibc

/// What the user asked for on the command line, before the environment is
/// consulted: the subcommand and the flags given, each as raw text.
public struct Invocation {
    public enum Subcommand: Equatable {
        /// The main job. `commandIndex` is the argv index where COMMAND starts.
        case run(commandIndex: Int)
        case check
        case install(destination: String)
        case version
        case help
    }

    public var subcommand: Subcommand
    /// Flag values in command-line order; flags without a value record "true".
    public var flags: [OptionKey: [String]] = [:]
}

/// Parses argv with glibc's getopt_long, driven by `Options.table`. Options
/// come before COMMAND; the first word that is not an option starts COMMAND
/// (or names a subcommand), and `--` ends option parsing explicitly, so
/// `baowrap -- check` runs a program named `check`.
public enum CommandLineParser {
    static let subcommands: Set<String> = ["check", "install", "version", "help"]

    public static func parse(_ argv: [ByteString]) throws(BaoWrapError) -> Invocation {
        var invocation = Invocation(subcommand: .help)
        let (stop, sawDashDash) = try scan(argv, from: 0, subcommand: nil, into: &invocation)
        guard stop < argv.count else {
            if invocation.flags[.dryRun] != nil { throw .config("--dry-run is only for baowrap check") }
            if sawDashDash { throw .config("no command after --", hint: "baowrap [OPTIONS] -- COMMAND [ARG...]") }
            return invocation  // bare `baowrap` or `baowrap --help`
        }
        let word = argv[stop].description
        if sawDashDash || !subcommands.contains(word) {
            if invocation.flags[.dryRun] != nil { throw .config("--dry-run is only for baowrap check") }
            invocation.subcommand = .run(commandIndex: stop)
            return invocation
        }
        // A subcommand: its own options follow it.
        let sub = Array(argv[stop...])
        let (rest, _) = try scan(sub, from: 0, subcommand: word, into: &invocation)
        let positional = sub[rest...].map(\.description)
        switch word {
        case "check":
            guard positional.isEmpty else { throw .config("unexpected argument \(positional[0]) after check") }
            invocation.subcommand = .check
        case "install":
            guard positional.count == 1 else { throw .config("install takes exactly one DEST_DIR", hint: "baowrap install /baowrap") }
            invocation.subcommand = .install(destination: positional[0])
        case "version":
            invocation.subcommand = .version
        default:
            invocation.subcommand = .help
        }
        if invocation.flags[.dryRun] != nil && word != "check" { throw .config("--dry-run is only for baowrap check") }
        return invocation
    }

    /// Runs getopt_long over `argv` (argv[0] is a program or subcommand
    /// name). Returns the index of the first non-option word, and whether
    /// option parsing ended with `--`.
    private static func scan(_ argv: [ByteString], from: Int, subcommand: String?,
                             into inv: inout Invocation) throws(BaoWrapError) -> (Int, Bool) {
        let flagged = Options.table.filter { $0.flag != nil }
        // C strings for argv and option names, alive for the whole scan.
        var storage: [UnsafeMutablePointer<CChar>] = []
        defer { storage.forEach { free($0) } }
        func cstr(_ bytes: [UInt8]) -> UnsafeMutablePointer<CChar> {
            let p = malloc(bytes.count + 1)!.assumingMemoryBound(to: CChar.self)
            if !bytes.isEmpty { bytes.withUnsafeBytes { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
            p[bytes.count] = 0
            storage.append(p)
            return p
        }
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { cstr($0.bytes) }
        cargv.append(nil)
        var longopts: [option] = flagged.enumerated().map { i, o in
            option(name: cstr(Array(o.flag!.utf8)), has_arg: o.arity == .flag ? no_argument : required_argument,
                   flag: nil, val: Int32(1000 + i))
        }
        longopts.append(option(name: cstr(Array("help".utf8)), has_arg: no_argument, flag: nil, val: Int32(UInt8(ascii: "h"))))
        longopts.append(option(name: nil, has_arg: 0, flag: nil, val: 0))

        var next: Int32 = 0
        // The argv index of the last option value given as a separate word,
        // so `--role -- check` is not taken for the `--` that ends options.
        var lastValueIndex = -1
        /// An option word as messages show it: without an attached value.
        func optionWord(_ i: Int) -> String {
            guard i >= 0 && i < argv.count else { return "?" }
            return String(decoding: argv[i].bytes.prefix { $0 != UInt8(ascii: "=") }, as: UTF8.self)
        }
        while true {
            // With "+" getopt never permutes, so the word it reads next is here.
            let wordIndex = max(Int(next), 1)
            var arg: UnsafePointer<CChar>?
            var bad: Int32 = -1
            var longIndex: Int32 = 0
            let c = bw_getopt_long(Int32(argv.count), &cargv, "+:h", &longopts, &longIndex, &next, &arg, &bad)
            if c == -1 { break }
            switch c {
            case Int32(UInt8(ascii: "h")):
                inv.flags[.dryRun] = nil
                inv.subcommand = .help
                return (argv.count, false)
            case Int32(UInt8(ascii: "?")):
                throw .config("unknown option \(optionWord(Int(bad)))", hint: "see baowrap --help")
            case Int32(UInt8(ascii: ":")):
                throw .config("option \(optionWord(Int(bad))) needs a value", hint: "see baowrap --help")
            default:
                let spec = flagged[Int(c) - 1000]
                // getopt_long accepts any unambiguous abbreviation; a manifest
                // written with one would break when a new option shares its
                // prefix, so only full names are taken.
                let word = optionWord(wordIndex)
                guard word == "--" + spec.flag! else {
                    throw .config("unknown option \(word)", hint: "did you mean --\(spec.flag!)? see baowrap --help")
                }
                if let only = spec.onlyFor, only != subcommand {
                    throw .config("--\(spec.flag!) is only for baowrap \(only)")
                }
                let value = spec.arity == .flag ? "true" : String(cString: arg!)
                if spec.arity != .flag && !argv[wordIndex].bytes.contains(UInt8(ascii: "=")) { lastValueIndex = Int(next) - 1 }
                inv.flags[spec.key, default: []].append(value)
            }
        }
        let index = Int(next)
        let dashDash = index > 0 && index <= argv.count && index - 1 != lastValueIndex && argv[index - 1].bytes == Array("--".utf8)
        return (index, dashDash)
    }
}
