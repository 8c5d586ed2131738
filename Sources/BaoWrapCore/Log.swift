import CBaoWrap
import Glibc

/// A value of a structured log field. There is no case for a `Secret` or a
/// `LockedBuffer`: a secret cannot be logged because it cannot be turned
/// into one of these.
public enum LogValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([String])
    public init(stringLiteral s: String) { self = .string(s) }
    public init(integerLiteral i: Int) { self = .int(i) }
}

/// Where log lines go; tests capture them.
public protocol LogSink: AnyObject {
    func write(line: String)
}

/// stderr, one write(2) per line, so lines from baowrap and its child do
/// not interleave mid-line.
public final class StandardErrorSink: LogSink {
    public init() {}
    public func write(line: String) {
        var l = line + "\n"
        l.withUTF8 { u in
            var off = 0
            while off < u.count {
                let n = system_write(2, u.baseAddress! + off, u.count - off)
                if n < 0 {
                    if Errno.current == .interrupted { continue }
                    return  // nowhere left to report a broken stderr
                }
                off += n
            }
        }
    }
}

/// baowrap's logger: JSON lines (`ts`, `level`, `event`, `msg`, then safe
/// fields) or plain text on stderr. Messages are autoclosures, so a line
/// below the level costs nothing.
public final class Logger {
    public var level: LogLevel
    public var format: LogFormat
    /// Show secret paths as written rather than as a short hash.
    public var showPaths: Bool
    let sink: any LogSink

    public init(level: LogLevel = .info, format: LogFormat = .json, showPaths: Bool = false,
                sink: any LogSink = StandardErrorSink()) {
        self.level = level
        self.format = format
        self.showPaths = showPaths
        self.sink = sink
    }

    public func log(_ level: LogLevel, _ event: String, _ message: @autoclosure () -> String,
                    _ fields: @autoclosure () -> [(String, LogValue)] = []) {
        guard level >= self.level else { return }
        sink.write(line: render(level, event, message(), fields()))
    }

    public func debug(_ event: String, _ m: @autoclosure () -> String, _ f: @autoclosure () -> [(String, LogValue)] = []) { log(.debug, event, m(), f()) }
    public func info(_ event: String, _ m: @autoclosure () -> String, _ f: @autoclosure () -> [(String, LogValue)] = []) { log(.info, event, m(), f()) }
    public func warn(_ event: String, _ m: @autoclosure () -> String, _ f: @autoclosure () -> [(String, LogValue)] = []) { log(.warn, event, m(), f()) }

    /// The one place an error becomes a log line.
    public func error(_ e: BaoWrapError, event: String = "failed") {
        var fields: [(String, LogValue)] = [("class", .string(e.errorClass.rawValue))]
        if let v = e.variable { fields.append(("var", .string(v))) }
        log(.error, event, e.rendered, fields)
    }

    /// A secret path as it may appear in logs: raw only with --log-paths or
    /// the development profile, otherwise `sha256:` and 12 hex digits.
    public func path(_ location: String) -> String {
        showPaths ? location : PathHash.label(location)
    }

    func render(_ level: LogLevel, _ event: String, _ message: String, _ fields: [(String, LogValue)]) -> String {
        switch format {
        case .json:
            var out = "{\"ts\":\"\(Timestamp.now())\",\"level\":\"\(level.name)\",\"event\":"
            JSONText.appendString(event, to: &out)
            out += ",\"msg\":"
            JSONText.appendString(message, to: &out)
            for (k, v) in fields {
                out += ","
                JSONText.appendString(k, to: &out)
                out += ":"
                switch v {
                case .string(let s): JSONText.appendString(s, to: &out)
                case .int(let i): out += String(i)
                case .bool(let b): out += b ? "true" : "false"
                case .list(let l):
                    out += "["
                    for (n, s) in l.enumerated() {
                        if n > 0 { out += "," }
                        JSONText.appendString(s, to: &out)
                    }
                    out += "]"
                }
            }
            return out + "}"
        case .text:
            var out = "baowrap: \(level.name) \(event): \(message)"
            for (k, v) in fields {
                switch v {
                case .string(let s): out += " \(k)=\(s)"
                case .int(let i): out += " \(k)=\(i)"
                case .bool(let b): out += " \(k)=\(b)"
                case .list(let l): out += " \(k)=\(l.joined(separator: ","))"
                }
            }
            return out.replacingNewlines
        }
    }
}

enum PathHash {
    static func label(_ location: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var s = location
        _ = s.withUTF8 { u in bw_sha256(u.baseAddress, u.count, &digest) }
        return "sha256:" + digest.prefix(6).map { b in
            let h = String(b, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined()
    }
}

/// JSON string literals, shared with baowrapctl's JSON output.
public enum JSONText {
    /// Appends `s` as a JSON string literal.
    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

enum Timestamp {
    /// RFC 3339 UTC with milliseconds, e.g. 2026-11-26T23:29:11.123Z.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}

extension String {
    /// Log lines stay one line even when a server message holds newlines.
    var replacingNewlines: String {
        String(String.UnicodeScalarView(unicodeScalars.map { $0 == "\n" || $0 == "\r" ? " " : $0 }))
    }
}
