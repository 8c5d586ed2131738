import BaoWrapCore
import Foundation
import Testing
@testable import BaoWrapInject

/// One directory per case under Fixtures/: `args` (one argument a line, as
/// after `baowrapctl`), `input.yaml` or `input.json`, and the expected
/// `output.yaml`/`output.json` or `error.txt` (the whole message).
/// `UPDATE_GOLDENS=1 swift test --filter golden` rewrites the expected
/// files; review the diff before committing it.
struct Golden {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).sorted()
    }

    let dir: URL
    init(_ name: String) { dir = Golden.root.appendingPathComponent(name) }

    func file(_ names: [String]) -> URL? {
        names.map { dir.appendingPathComponent($0) }.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    func read(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    var arguments: [String] {
        get throws { try read(dir.appendingPathComponent("args")).split(separator: "\n").map(String.init) }
    }

    func settings() throws -> Settings {
        guard case .inject(let s) = try InjectCommandLine.parse(["inject"] + arguments) else {
            throw BaoWrapError(.config, "args of \(dir.lastPathComponent) are not an inject command")
        }
        return s
    }

    /// What inject gives: the output text or the rendered error.
    func run(_ input: String) throws -> Result<String, BaoWrapError> {
        let s = try settings()
        return Result { () throws(BaoWrapError) in try Injector.inject(input, settings: s) }
    }

    static var updating: Bool { ProcessInfo.processInfo.environment["UPDATE_GOLDENS"] == "1" }
}

@Test(arguments: Golden.cases)
func golden_outputMatches(_ name: String) throws {
    let g = Golden(name)
    let input = try #require(g.file(["input.yaml", "input.json"]), "\(name): no input file")
    let result = try g.run(try g.read(input))
    let ext = input.pathExtension
    if Golden.updating {
        for stale in ["output.yaml", "output.json", "error.txt"] {
            try? FileManager.default.removeItem(at: g.dir.appendingPathComponent(stale))
        }
        switch result {
        case .success(let out): try out.write(to: g.dir.appendingPathComponent("output.\(ext)"), atomically: true, encoding: .utf8)
        case .failure(let e): try (e.rendered + "\n").write(to: g.dir.appendingPathComponent("error.txt"), atomically: true, encoding: .utf8)
        }
        return
    }
    if let expected = g.file(["output.yaml", "output.json"]) {
        #expect(try result.get() == g.read(expected), "\(name): output differs from \(expected.lastPathComponent)")
    } else {
        let expected = try #require(g.file(["error.txt"]), "\(name): no output or error.txt")
        switch result {
        case .success(let out): Issue.record("\(name): expected an error, got output:\n\(out)")
        case .failure(let e):
            #expect(e.errorClass == .config)
            #expect(e.rendered + "\n" == (try g.read(expected)))
        }
    }
}

/// Running inject on its own output, with the same arguments, changes
/// nothing: byte for byte.
@Test(arguments: Golden.cases)
func golden_secondRunChangesNothing(_ name: String) throws {
    let g = Golden(name)
    guard !Golden.updating, let expected = g.file(["output.yaml", "output.json"]) else { return }
    let once = try g.read(expected)
    #expect(try g.run(once).get() == once)
}
