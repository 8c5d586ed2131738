import BaoWrapCore
import CBaoWrap
import Glibc

// The whole life of baowrap, in order. Each step is one call; a failure
// before the child starts exits 125 with one log line naming the error class.
func main() -> Int32 {
    // 1. Take over signals before anything can start a thread.
    let signals: Signals
    do { signals = try Signals.takeOver() } catch {
        Logger().error(error)
        return ExitStatus.wrapperFailure.code
    }
    // 2. Hygiene before any secret exists: the wiping allocator for OpenSSL
    //    (must precede its first use; libcurl gets it when the HTTP engine
    //    starts), and no core dumps or ptrace/proc access by same-uid
    //    processes.
    guard bw_install_wiping_allocators() == 0 else {
        // OpenSSL allocated before baowrap could hand it the wiping
        // allocator: its buffers would keep secret bytes after free.
        Logger().error(BaoWrapError(.system, "cannot install the wiping allocator for OpenSSL; refusing to handle secrets"))
        return ExitStatus.wrapperFailure.code
    }
    _ = bw_set_dumpable(0)

    var log = Logger()
    // 3. Parse the command line and the environment.
    let invocation: Invocation
    let config: Config
    let environment = ProcessInput.environment
    do {
        invocation = try CommandLineParser.parse(ProcessInput.arguments)
        let early = Config.logSettings(flags: invocation.flags, environment: environment)
        log = Logger(level: early.level, format: early.format)
        if case .help = invocation.subcommand {
            print(Options.helpText, terminator: "")
            return ProcessInput.arguments.count > 1 ? 0 : ExitStatus.wrapperFailure.code
        }
        if case .version = invocation.subcommand {
            print(Version.text)
            return 0
        }
        if case .install(let dir) = invocation.subcommand {
            var sources = ["/proc/self/exe"]
            if let argv0 = ProcessInput.arguments.first?.description, argv0.utf8.contains(UInt8(ascii: "/")) { sources.append(argv0) }
            let (path, bytes) = try Installer.install(into: dir, sources: sources)
            log.info("installed", "installed \(path) (\(bytes) bytes, mode 0555)")
            return 0
        }
        config = try Config.load(flags: invocation.flags, environment: environment)
    } catch {
        log.error(error)
        return ExitStatus.wrapperFailure.code
    }
    log = Logger(level: config.logLevel, format: config.logFormat, showPaths: config.showPaths)
    for name in config.unknownVariables {
        log.warn("unknown_variable", "\(name) is not a baowrap setting (typo?); removed from the child's environment", [("var", .string(name))])
    }
    if config.profile == .development {
        log.warn("security_risk", "development profile: hardened rules relaxed", [("relaxations", .list(config.relaxations))])
    }

    switch invocation.subcommand {
    case .check: return Check.run(config: config, log: log, signals: signals).code
    case .run(let index): return run(config: config, commandIndex: index, environment: environment, log: log, signals: signals).code
    default: return ExitStatus.wrapperFailure.code
    }
}

/// The main job: fetch, spawn, wipe, revoke, supervise (and with --watch,
/// keep the token and watch instead of revoking).
func run(config: Config, commandIndex: Int, environment: [EnvironmentEntry], log: Logger, signals: Signals) -> ExitStatus {
    Supervisor.becomeSubreaper()
    let startup = Startup(config: config, log: log, interrupt: signals)
    var resolved: [ResolvedVariable] = []
    var skipped: Set<String> = []
    var watched: [WatchedSecret] = []
    if config.needsOpenBao {
        do {
            let outcome = try startup.fetch()
            guard outcome.failures.isEmpty else {
                // Fail closed: every failing variable gets its line; nothing starts.
                for f in outcome.failures { log.error(f) }
                startup.finish()
                return .wrapperFailure
            }
            resolved = outcome.variables
            skipped = outcome.skippedNames
            watched = outcome.watched
            log.info("resolved", "resolved \(resolved.count) secret variables", [("count", .int(resolved.count))])
        } catch {
            log.error(error)
            startup.finish()
            if let s = error.signal { return .signaled(s) }
            return .wrapperFailure
        }
    }

    let supervisor = Supervisor(signals: signals, log: log, signalGroup: config.signalGroup)
    let workload = Workload(commandIndex: commandIndex, inherited: environment)
    let watcher = Watcher(startup: startup, workload: workload, watched: watched)
    let failed: ExitStatus?
    do {
        failed = try workload.start(resolved, unset: skipped, supervisor: supervisor, log: log)
    } catch {
        log.error(error)
        startup.finish()
        return .wrapperFailure
    }
    // The child has its copy; baowrap's copies go now. The watch keeps the
    // token until baowrap exits; otherwise it is revoked now.
    resolved = []
    if let failed {
        startup.finish()
        return failed
    }
    if watcher != nil { startup.wipeValues() } else { startup.finish() }
    log.debug("started", "started pid \(supervisor.child)", [("pid", .int(Int(supervisor.child)))])
    // Before the long wait, what only the start needed goes back: freed
    // heap and the resident code pages.
    bw_release_startup_memory()
    let status = supervisor.supervise(watcher)
    if watcher != nil { startup.finish() }
    return status
}

exit(main())
