import BaoWrapCore
import Foundation
import Yams

/// Writes a node as JSON, keys in their original order (JSONSerialization
/// would sort or scramble them). Scalars keep the type they were read as: a
/// quoted scalar is a string, plain `600`/`true`/`null` stay literals.
enum JSONWriter {
    static func write(_ node: Node, indent: Int) -> String {
        var out = ""
        emit(node, level: 0, indent: String(repeating: " ", count: indent), into: &out)
        return out
    }

    private static func emit(_ node: Node, level: Int, indent: String, into out: inout String) {
        let inner = String(repeating: indent, count: level + 1)
        let outer = String(repeating: indent, count: level)
        switch node {
        case .mapping(let m):
            guard !m.isEmpty else { out += "{}"; return }
            out += "{\n"
            for (i, pair) in m.enumerated() {
                out += inner + quoted(pair.key.string ?? "") + ": "
                emit(pair.value, level: level + 1, indent: indent, into: &out)
                out += i == m.count - 1 ? "\n" : ",\n"
            }
            out += outer + "}"
        case .sequence(let s):
            guard !s.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (i, item) in s.enumerated() {
                out += inner
                emit(item, level: level + 1, indent: indent, into: &out)
                out += i == s.count - 1 ? "\n" : ",\n"
            }
            out += outer + "]"
        case .scalar(let s):
            out += literal(s, tag: node.tagName) ?? quoted(s.string)
        case .alias:
            out += "null"  // Yams resolves aliases while composing; none reach here.
        }
    }

    /// The JSON literal for a plain null, boolean or number scalar.
    private static func literal(_ s: Node.Scalar, tag: Tag.Name) -> String? {
        switch tag {
        case .null: return "null"
        case .bool: return Node(s.string).bool.map { $0 ? "true" : "false" }
        case .int, .float:
            let t = s.string
            let isJSONNumber = t.range(of: #"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil
            return isJSONNumber ? t : nil
        default: return nil
        }
    }

    private static func quoted(_ s: String) -> String {
        var out = ""
        JSONText.appendString(s, to: &out)
        return out
    }
}
