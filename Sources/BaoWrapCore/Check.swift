/// `baowrap check`: the same login and resolution as a run, reported as a
/// table on stdout (NAME, SOURCE, VERSION, ROUTE, STATUS), never a value.
/// Exit 0 when everything resolved, 1 when something did not, 125 when
/// baowrap could not even try (configuration, login).
public enum Check {
    public static func run(config: Config, log: Logger, signals: (any InterruptSource)?,
                           output: (String) -> Void = { print($0) }) -> ExitStatus {
        if config.dryRun {
            output(table(config.secrets.map { b in [b.name, b.source(showPaths: config.showPaths), "-", "-", "not checked"] }
                + config.fromPaths.map { p in [p.prefix + "*", p.source(showPaths: config.showPaths), "-", "-", "not checked"] }))
            return .exited(0)
        }
        guard config.needsOpenBao else {
            log.warn("no_secrets", "no secrets configured; nothing to check")
            return .exited(0)
        }
        let startup = Startup(config: config, log: log, interrupt: signals)
        defer { startup.finish() }
        let outcome: Resolver.Outcome
        do {
            outcome = try startup.fetch()
        } catch {
            log.error(error)
            return .wrapperFailure
        }
        let route = outcome.stoppedBy == nil ? startup.client?.route.kind.rawValue ?? "-" : "-"
        output(table(outcome.rows.map { r in
            [r.name, r.source, r.version.map(String.init) ?? "-", route,
             r.skipped ? "skipped" : r.failure.map { $0.errorClass.rawValue } ?? "ok"]
        }))
        for f in outcome.failures { log.error(f) }
        // Not even a login: baowrap could not try, as when a run fails before its child.
        if outcome.stoppedBy != nil { return .wrapperFailure }
        return outcome.failures.isEmpty ? .exited(0) : .checkFailed
    }

    static func table(_ rows: [[String]]) -> String {
        let all = [["NAME", "SOURCE", "VERSION", "ROUTE", "STATUS"]] + rows
        let widths = (0..<5).map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { i, cell in i == 4 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
