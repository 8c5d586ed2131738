import Foundation
import Testing
@testable import BaoWrapCore

final class CapturingSink: LogSink {
    var lines: [String] = []
    func write(line: String) { lines.append(line) }
}

private func capture(_ level: LogLevel = .info, _ format: LogFormat = .json, showPaths: Bool = false) -> (Logger, CapturingSink) {
    let sink = CapturingSink()
    return (Logger(level: level, format: format, showPaths: showPaths, sink: sink), sink)
}

private func object(_ line: String) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

@Test func jsonLine_hasTimestampLevelEventMessageAndFields() throws {
    let (log, sink) = capture()
    log.warn("mlock_unavailable", "pages not locked", [("class", "mlock_unavailable"), ("regions", 2), ("ok", .bool(false)),
                                                       ("relaxations", .list(["a", "b"]))])
    #expect(sink.lines.count == 1)
    let line = sink.lines[0]
    #expect(line.hasPrefix("{\"ts\":\""))
    let o = try object(line)
    #expect(o["level"] as? String == "warn")
    #expect(o["event"] as? String == "mlock_unavailable")
    #expect(o["msg"] as? String == "pages not locked")
    #expect(o["class"] as? String == "mlock_unavailable")
    #expect(o["regions"] as? Int == 2)
    #expect(o["ok"] as? Bool == false)
    #expect(o["relaxations"] as? [String] == ["a", "b"])
    let ts = try #require(o["ts"] as? String)
    #expect(ts.count == 24 && ts.hasSuffix("Z") && ts.dropFirst(10).first == "T")
}

@Test func jsonLine_escapesEverythingThatWouldBreakTheLine() throws {
    let (log, sink) = capture()
    let nasty = "quote\" backslash\\ newline\n cr\r tab\t bell\u{07} del\u{7f} é 😀"
    log.info(nasty, nasty, [(nasty, .string(nasty))])
    #expect(sink.lines.count == 1 && !sink.lines[0].contains("\n"))
    let o = try object(sink.lines[0])
    #expect(o["event"] as? String == nasty)
    #expect(o["msg"] as? String == nasty)
    #expect(o[nasty] as? String == nasty)
}

@Test func levelFilter_dropsLinesAndNeverBuildsTheirMessage() {
    let (log, sink) = capture(.warn)
    var built = 0
    func message() -> String { built += 1; return "expensive" }
    log.debug("d", message())
    log.info("i", message())
    log.warn("w", message())
    #expect(sink.lines.count == 1)
    #expect(built == 1)
}

@Test func errorLine_carriesClassAndVariable() throws {
    let (log, sink) = capture()
    log.error(BaoWrapError(.notFound, "secret sha256:abc does not exist", variable: "DB_PASSWORD", hint: "check the path"))
    let o = try object(sink.lines[0])
    #expect(o["level"] as? String == "error")
    #expect(o["event"] as? String == "failed")
    #expect(o["class"] as? String == "not_found")
    #expect(o["var"] as? String == "DB_PASSWORD")
    #expect(o["msg"] as? String == "DB_PASSWORD: secret sha256:abc does not exist (hint: check the path)")
}

@Test func textFormat_isOneLineWithFieldsAppended() {
    let (log, sink) = capture(.info, .text)
    log.warn("security_risk", "relaxed\nrules", [("relaxations", .list(["http_address", "static_token"])), ("n", 1)])
    #expect(sink.lines == ["baowrap: warn security_risk: relaxed rules relaxations=http_address,static_token n=1"])
}

@Test func paths_areHashedUnlessShown() {
    let (hidden, _) = capture()
    #expect(hidden.path("secret/app/db") == "sha256:04d8bacec9a2")
    #expect(!hidden.path("secret/app/db").contains("app"))
    let (shown, _) = capture(showPaths: true)
    #expect(shown.path("secret/app/db") == "secret/app/db")
}

@Test func config_showsPathsOnlyWithLogPathsOrDevelopment() {
    var c = Config()
    #expect(!c.showPaths)
    c.logPaths = true
    #expect(c.showPaths)
    c.logPaths = false
    c.profile = .development
    #expect(c.showPaths)
}

@Test func secret_cannotBecomeAnyLogText() throws {
    let arena = SecretArena()
    let s = try arena.write(capacity: 16) { out in
        for (i, b) in "hunter2-canary!".utf8.enumerated() { out[i] = b }
        return 15
    }
    let (log, sink) = capture(.debug)
    log.info("x", "value: \(s)", [("v", .string(String(describing: s))), ("d", .string(String(reflecting: s)))])
    var dumped = ""
    dump(s, to: &dumped)
    for text in sink.lines + [dumped] {
        #expect(!text.contains("hunter2"))
    }
    #expect(sink.lines[0].contains("<secret, 15 bytes>"))
}
