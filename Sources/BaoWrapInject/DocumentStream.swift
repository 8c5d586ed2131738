import BaoWrapCore
import Foundation
import Yams

/// A manifest file as a list of documents, each kept with its own source
/// text. libyaml reports no comments, so only documents inject rewrites are
/// re-emitted; every other document (unknown kinds, `inject: "false"`,
/// already injected ones) is copied byte for byte, comments included.
///
/// The stream is cut at document markers in the text, which is exact: in
/// YAML a line starting with `---` or `...` followed by a space or the end
/// of the line is always a marker, even inside a block scalar.
struct DocumentStream {
    struct Document {
        /// The document's text: its `---` line and comments, body, `...` line.
        var source: String
        /// 1-based line of `source`'s first line in the input.
        var firstLine: Int
        /// The parsed body; nil for a stream piece with only comments.
        var node: Node?
        /// The body after a rewrite; nil when it is unchanged.
        var rewritten: Node?
    }

    enum Format { case yaml, json }

    var documents: [Document]
    let format: Format

    /// Splits and parses `text`. A whole input that is valid JSON is JSON
    /// (`kubectl get -o json`) and is written back as JSON.
    init(_ text: String) throws(BaoWrapError) {
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        let trimmed = body.drop { $0.isWhitespace }
        if let first = trimmed.first, first == "{" || first == "[",
           (try? JSONSerialization.jsonObject(with: Data(body.utf8))) != nil {
            format = .json
            documents = [Document(source: body, firstLine: 1, node: try Self.parse(body, firstLine: 1))]
            return
        }
        format = .yaml
        documents = []
        for (source, firstLine) in Self.split(body) {
            documents.append(Document(source: source, firstLine: firstLine, node: try Self.parse(source, firstLine: firstLine)))
        }
    }

    /// The output: unchanged documents as they were, rewritten ones re-emitted.
    func render() throws(BaoWrapError) -> String {
        var out = ""
        for d in documents {
            guard let node = d.rewritten else {
                out += d.source
                continue
            }
            switch format {
            case .json: out += JSONWriter.write(node, indent: Self.indentWidth(of: d.source, default: 2)) + "\n"
            case .yaml:
                // Leading comments (a license header, helm's `# Source:` line)
                // and the `---` line survive; comments inside the body do not.
                let (head, tail) = Self.frame(of: d.source)
                let yaml: String
                do {
                    yaml = try Yams.serialize(node: node, indent: Self.indentWidth(of: d.source, default: 2),
                                              width: -1, allowUnicode: true,
                                              lineBreak: d.source.contains("\r\n") ? .crln : .ln)
                } catch {
                    throw BaoWrapError(.config, "cannot write the rewritten document at line \(d.firstLine): \(error)")
                }
                if !out.isEmpty && !out.hasSuffix("\n") { out += "\n" }
                out += head + yaml + tail
            }
        }
        return out
    }

    // MARK: splitting

    private enum LineKind { case start, end, directive, blankOrComment, content }

    /// The input's lines, each with its own line break ("\n", or "\r\n",
    /// which Swift counts as one Character), so joining them gives the
    /// input back exactly.
    private static func lines(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        for i in text.indices where text[i] == "\n" || text[i] == "\r\n" {
            let next = text.index(after: i)
            out.append(text[start..<next])
            start = next
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    private static func kind(of rawLine: Substring) -> LineKind {
        let line = rawLine.last?.isNewline == true ? rawLine.dropLast() : rawLine
        func marker(_ m: String) -> Bool {
            guard line.hasPrefix(m) else { return false }
            let rest = line.dropFirst(3)
            return rest.isEmpty || rest.first == " " || rest.first == "\t"
        }
        if marker("---") { return .start }
        if marker("...") { return .end }
        if line.hasPrefix("%") { return .directive }
        let t = line.drop { $0 == " " || $0 == "\t" }
        if t.isEmpty || t.first == "#" { return .blankOrComment }
        return .content
    }

    /// Cuts the stream into pieces of one document each, with the line each
    /// starts on. Directives and comments before a `---` belong to the
    /// document it opens (comments from the first one at column 0 after the
    /// previous body on: a column-0 `#` ends any block scalar, so moving
    /// those lines changes no value); a `...` closes its document.
    private static func split(_ text: String) -> [(String, Int)] {
        var pieces: [(String, Int)] = []
        var current: [Substring] = []
        var firstLine = 1
        var opened = false          // the piece has a --- line or content
        var commentRun: Int?        // index in `current` of a column-0 comment run after the body
        func cut(at index: Int) {
            if index > 0 { pieces.append((current[..<index].joined(), firstLine)) }
            firstLine += index
            current.removeFirst(index)
            opened = false
            commentRun = nil
        }
        for line in lines(text) {
            let kind = kind(of: line)
            switch kind {
            case .start, .directive:
                if opened { cut(at: commentRun ?? current.count) }
                opened = kind == .start
            case .end:
                current.append(line)
                cut(at: current.count)
                continue
            case .content:
                opened = true
                commentRun = nil
            case .blankOrComment:
                if opened, commentRun == nil, line.hasPrefix("#") { commentRun = current.count }
            }
            current.append(line)
        }
        cut(at: current.count)
        return pieces
    }

    /// A rewritten document's frame: the lines before its body (markers
    /// and comments) and a closing `...` line.
    private static func frame(of source: String) -> (head: String, tail: String) {
        var head = ""
        var tail = ""
        var inBody = false
        for line in lines(source) {
            switch kind(of: line) {
            case .start where !inBody:
                let rest = line.dropFirst(3).drop { $0 == " " || $0 == "\t" }
                if rest.isEmpty || rest.first == "#" || rest.first?.isNewline == true {
                    head += line
                } else {
                    head += "---\n"
                    inBody = true
                }
            case .directive where !inBody, .blankOrComment where !inBody:
                head += line
            case .end:
                tail = String(line)
            default:
                inBody = true
            }
        }
        return (head, tail)
    }

    /// The indentation the document uses (its smallest nested indent), so
    /// a 4-space file stays 4-space; libyaml accepts 2 to 9.
    private static func indentWidth(of source: String, default fallback: Int) -> Int {
        var best: Int?
        for line in lines(source) where kind(of: line) == .content {
            let n = line.prefix { $0 == " " }.count
            if n > 0, n < (best ?? .max) { best = n }
        }
        return min(max(best ?? fallback, 2), 9)
    }

    // MARK: parsing

    private static func parse(_ source: String, firstLine: Int) throws(BaoWrapError) -> Node? {
        do {
            return try Yams.compose(yaml: source)
        } catch let e as YamlError {
            throw BaoWrapError(.config, "input is not valid YAML or JSON: " + describe(e, firstLine: firstLine))
        } catch {
            throw BaoWrapError(.config, "input is not valid YAML or JSON: \(error)")
        }
    }

    /// libyaml's message with the line counted from the start of the input.
    private static func describe(_ e: YamlError, firstLine: Int) -> String {
        func at(_ mark: Mark) -> String { "line \(firstLine + mark.line - 1) column \(mark.column)" }
        switch e {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return "\(at(mark)): \(problem)" + (context.map { " (\($0.text))" } ?? "")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return "\(at(context.mark)): duplicate key \(duplicates.joined(separator: ", "))"
        case .reader(let problem, _, _, _):
            return problem
        default:
            return "\(e)"
        }
    }
}
