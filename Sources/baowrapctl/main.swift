import BaoWrapCore
import BaoWrapInject
import Foundation

// baowrapctl: the workstation/CI companion of baowrap (never runs in a pod).
// Each step is one call; any failure prints one line and exits 125 before
// anything is written.
func main() -> Int32 {
    do {
        // 1. What to do.
        let settings: Settings
        switch try InjectCommandLine.parse(Array(CommandLine.arguments.dropFirst())) {
        case .help:
            print(InjectOptions.helpText, terminator: "")
            return 0
        case .version:
            print("baowrapctl \(Version.number)")
            return 0
        case .inject(let s):
            settings = s
        }
        // 2. The whole input, in memory.
        let input = try ManifestFile.read(settings.input)
        // 3. The whole output, in memory: an error leaves no partial result.
        let output = try Injector.inject(input, settings: settings)
        // 4. Written in one piece.
        try ManifestFile.write(output, to: settings.output)
        return 0
    } catch {
        FileHandle.standardError.write(Data("baowrapctl: \(error.errorClass.rawValue): \(error.rendered)\n".utf8))
        return ExitStatus.wrapperFailure.code
    }
}

exit(main())
