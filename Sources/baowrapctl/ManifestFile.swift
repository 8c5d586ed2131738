import BaoWrapCore
import Foundation
import Glibc

/// Reading the input manifest and writing the result. The result is
/// written only once it is complete: stdout in one go, or `-o FILE` through
/// a temporary file in the same directory renamed over FILE, so a reader
/// (or the input file itself, with `-f x -o x`) never sees half a manifest.
enum ManifestFile {
    static func read(_ path: String?) throws(BaoWrapError) -> String {
        let data: Data
        if let path, path != "-" {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw BaoWrapError(.system, "cannot open \(path)", errno: Errno(rawValue: errno)) }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            do { data = try handle.readToEnd() ?? Data() } catch {
                throw BaoWrapError(.system, "cannot read \(path): \(error.localizedDescription)")
            }
        } else {
            do { data = try FileHandle.standardInput.readToEnd() ?? Data() } catch {
                throw BaoWrapError(.system, "cannot read stdin: \(error.localizedDescription)")
            }
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw BaoWrapError(.config, "\(path ?? "stdin") is not UTF-8 text, so not a manifest")
        }
        return text
    }

    static func write(_ text: String, to path: String?) throws(BaoWrapError) {
        guard let path else {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        func fail(_ what: String, _ e: CInt = errno) -> BaoWrapError {
            BaoWrapError(.system, "cannot write \(path): \(what)", errno: Errno(rawValue: e))
        }
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array(((directory.isEmpty ? "." : directory) + "/.baowrapctl-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw fail("cannot create a temporary file next to it") }
        let temporary = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var committed = false
        defer {
            close(fd)
            if !committed { unlink(temporary) }
        }
        // A rewritten file keeps its mode; a new one gets what umask allows.
        var st = stat()
        let mode: mode_t
        if stat(path, &st) == 0 {
            mode = st.st_mode & 0o7777
        } else {
            let mask = umask(0)
            umask(mask)
            mode = 0o666 & ~mask
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw fail("write failed") }
            written += n
        }
        guard fchmod(fd, mode) == 0 else { throw fail("fchmod failed") }
        guard fsync(fd) == 0 else { throw fail("fsync failed") }
        guard rename(temporary, path) == 0 else { throw fail("rename failed") }
        committed = true
    }
}
