import Testing
@testable import BaoWrapCore

/// getopt_long keeps global state, so every test that parses argv runs in
/// this one serialized suite.
@Suite(.serialized) struct CommandLineTests {
    func parse(_ words: [String]) throws(BaoWrapError) -> Invocation {
        try CommandLineParser.parse((["baowrap"] + words).map(ByteString.init))
    }

    func parseError(_ words: [String]) -> BaoWrapError? {
        do {
            _ = try parse(words)
            return nil
        } catch {
            return error
        }
    }

    @Test func run_flagsBeforeTheCommand() throws {
        let inv = try parse(["--role", "app", "--secret", "A=s/a#k", "--secret", "B=s/b#k", "--log-paths", "--", "env", "-0"])
        #expect(inv.subcommand == .run(commandIndex: 9))
        #expect(inv.flags[.role] == ["app"])
        #expect(inv.flags[.secret] == ["A=s/a#k", "B=s/b#k"])
        #expect(inv.flags[.logPaths] == ["true"])
    }

    @Test func run_optionsStopAtTheFirstWord() throws {
        let inv = try parse(["--role=app", "server", "--role", "not-ours"])
        #expect(inv.subcommand == .run(commandIndex: 2))
        #expect(inv.flags[.role] == ["app"])
    }

    @Test func dashDash_makesASubcommandNameACommand() throws {
        #expect(try parse(["--", "check"]).subcommand == .run(commandIndex: 2))
    }

    @Test func dashDash_asAnOptionValueDoesNotEndOptions() throws {
        let inv = try parse(["--role", "--", "check"])
        #expect(inv.flags[.role] == ["--"])
        #expect(inv.subcommand == .check)
    }

    @Test func check_takesItsOwnOptions() throws {
        let inv = try parse(["--role", "a", "check", "--dry-run", "--secret", "A=s/a#k"])
        #expect(inv.subcommand == .check)
        #expect(inv.flags[.dryRun] == ["true"])
        #expect(inv.flags[.secret] == ["A=s/a#k"])
    }

    @Test(arguments: [
        (["--rol", "x", "--", "true"], "unknown option --rol"),
        (["--role=app", "--secre=A=s/a#k", "--", "true"], "unknown option --secre"),
        (["--log-path", "--", "true"], "unknown option --log-path"),
        (["--no-such-thing", "--", "true"], "unknown option --no-such-thing"),
        (["-x", "--", "true"], "unknown option -x"),
        (["--role"], "option --role needs a value"),
        (["--"], "no command after --"),
        (["--dry-run", "--", "true"], "--dry-run is only for baowrap check"),
        (["check", "extra"], "unexpected argument extra after check"),
        (["install"], "install takes exactly one DEST_DIR"),
        (["install", "a", "b"], "install takes exactly one DEST_DIR"),
        (["check", "--bogus"], "unknown option --bogus"),
    ])
    func mistakes_getOneClearMessage(words: [String], message: String) throws {
        let e = try #require(parseError(words))
        #expect(e.errorClass == .config)
        #expect(e.message == message)
    }

    @Test func help_andVersion() throws {
        #expect(try parse([]).subcommand == .help)
        #expect(try parse(["--help"]).subcommand == .help)
        #expect(try parse(["-h", "--bogus"]).subcommand == .help)
        #expect(try parse(["version"]).subcommand == .version)
        #expect(try parse(["install", "/baowrap"]).subcommand == .install(destination: "/baowrap"))
    }

    @Test func randomArgv_neverCrashes() {
        var rng = SeededGenerator(seed: 0x5EED_0009)
        let words = ["--role", "--role=", "--secret", "-", "--", "-h", "--help", "check", "install", "version", "x",
                     "--dry-run", "--log-paths", "--timeout", "--from-path", "-x", "--ro", "", "\u{FF}", "=", "--=x"]
        for _ in 0..<2000 {
            let argv = (0..<Int.random(in: 0...6, using: &rng)).map { _ in words.randomElement(using: &rng)! }
            if let inv = try? parse(argv), case .run(let i) = inv.subcommand {
                #expect(i >= 1 && i <= argv.count)
            }
        }
    }
}
