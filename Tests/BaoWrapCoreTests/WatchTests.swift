import Glibc
import Testing
@testable import BaoWrapCore

@Suite struct WatchConfigTests {
    @Test func defaults_watchOff_restartOnChange_termThenTenSeconds() throws {
        let c = try loadConfig()
        #expect(c.watch == nil)
        #expect(c.onChange == .restart)
        #expect(c.stopSignal == .term && c.stopTimeout == .seconds(10))
        #expect(c.watchFailAfter == nil)
    }

    @Test func everyWatchOption_asVariable() throws {
        let c = try loadConfig(env: ["BAOWRAP_WATCH=1m30s", "BAOWRAP_ON_CHANGE=signal:hup", "BAOWRAP_STOP_SIGNAL=SIGINT",
                                     "BAOWRAP_STOP_TIMEOUT=0", "BAOWRAP_WATCH_FAIL_AFTER=3"])
        #expect(c.watch == .seconds(90))
        #expect(c.onChange == .signal(.hup))
        #expect(c.stopSignal == .int && c.stopTimeout == .zero)
        #expect(c.watchFailAfter == 3)
    }

    @Test(arguments: [("restart", ChangeAction.restart), ("EXIT", .exit), ("signal:USR1", .signal(Signal(rawValue: SIGUSR1))),
                      ("signal:SIGHUP", .signal(.hup)), ("signal:1", .signal(.hup))])
    func onChange_spellings(_ text: String, _ action: ChangeAction) throws {
        #expect(try loadConfig([.onChange: [text]]).onChange == action)
    }

    @Test(arguments: [(OptionKey.watch, "50ms"), (.watch, "30"), (.watch, "soon"), (.onChange, "signal"), (.onChange, "signal:NOPE"),
                      (.onChange, "reload"), (.stopSignal, "TERMINATE"), (.stopTimeout, "-1s"), (.watchFailAfter, "0"),
                      (.watchFailAfter, "many")])
    func badValues_areConfigErrorsNamingTheOption(_ key: OptionKey, _ value: String) throws {
        let e = try #require(configError([key: [value]]))
        #expect(e.errorClass == .config)
        #expect(e.rendered.hasPrefix("--\(Options.spec(key).flag!) \"\(value)\" is not valid"))
    }

    @Test func offAndNever_meanTheDefault() throws {
        let c = try loadConfig([.watch: ["off"], .watchFailAfter: ["never"]])
        #expect(c.watch == nil && c.watchFailAfter == nil)
    }
}

@Suite struct WatchScheduleTests {
    @Test func jitter_staysWithinTenPercent() {
        #expect(Watcher.jittered(.seconds(10), random: 0) == 9_000_000_000)
        #expect(Watcher.jittered(.seconds(10), random: 0.5) == 10_000_000_000)
        #expect(Watcher.jittered(.seconds(10), random: 0.999_999) <= 11_000_000_000)
    }

    @Test func backoff_doublesUpToEightTimes_cappedAtFiveMinutes() {
        #expect((1...6).map { Watcher.backoff(.seconds(1), failures: $0) } == [1, 2, 4, 8, 8, 8].map { Duration.seconds($0) })
        #expect(Watcher.backoff(.seconds(60), failures: 4) == .seconds(300))
        // An interval longer than the cap is never shortened.
        #expect(Watcher.backoff(.seconds(600), failures: 3) == .seconds(600))
    }
}
