import Yams

/// Building and editing Yams nodes the way a manifest rewrite needs them:
/// strings that stay strings for any reader, and edits that keep key order
/// and leave equal values (and their original quoting) alone.
extension Node {
    /// A string scalar. Text a YAML 1.1 reader would take for another type
    /// (`true`, `600`, `~`; Kubernetes' reader also takes `y`/`n` and
    /// `on`/`off` for booleans) is double-quoted; several lines become a
    /// literal block.
    static func text(_ s: String) -> Node {
        let style: Scalar.Style
        if s.contains("\n") {
            style = .literal
        } else if Node(s).tagName != .str || ["y", "Y", "n", "N"].contains(s) {
            style = .doubleQuoted
        } else {
            style = .any
        }
        return Node(s, Tag(.str), style)
    }

    /// The resolved type (str, int, bool, null...) of the node.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }

    static func number(_ n: Int) -> Node { Node(String(n), Tag(.int), .plain) }

    static func flag(_ b: Bool) -> Node { Node(b ? "true" : "false", Tag(.bool), .plain) }

    static func map(_ pairs: [(String, Node)]) -> Node {
        .mapping(Mapping(pairs.map { (Node.text($0.0), $0.1) }))
    }

    static func list(_ items: [Node]) -> Node { .sequence(Sequence(items)) }

    /// The scalar's text when it is a string (quoted, or plain text that
    /// resolves to a string), e.g. a `name` or `kind`.
    var text: String? {
        guard case .scalar(let s) = self, tagName == .str else { return nil }
        return s.string
    }

    /// A sequence whose items are all strings, e.g. a container's `command`.
    var texts: [String]? {
        guard case .sequence(let seq) = self else { return nil }
        let items = seq.compactMap(\.text)
        return items.count == seq.count ? items : nil
    }

    var items: [Node]? {
        guard case .sequence(let seq) = self else { return nil }
        return Array(seq)
    }

    /// The list under `key`; an absent or null one is an empty list, and
    /// anything else is returned as it is for the caller to refuse.
    func list(at key: String) -> Node {
        guard let v = self[key], v.tagName != .null else { return .list([]) }
        return v
    }

    var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }

    /// Sets `key` in a mapping, in place when the key exists (its position
    /// is kept) and not at all when the value is already equal, so an
    /// unchanged value keeps its original quoting and a second run changes
    /// nothing.
    mutating func put(_ key: String, _ value: Node) {
        guard case .mapping(var m) = self else { return }
        if m[key] == value { return }
        m[key] = value
        self = .mapping(m)
    }

    /// Like `put`, but a new key goes right after the first of `anchors`
    /// the mapping has (at the end without one), so `command` lands next
    /// to `image` where a reviewer expects it.
    mutating func put(_ key: String, _ value: Node, after anchors: [String]) {
        insert(key, value) { pairs in
            anchors.lazy.compactMap { a in pairs.lastIndex { $0.0.text == a } }.first.map { $0 + 1 }
        }
    }

    /// Like `put`, but a new key goes right before `anchor` when present.
    mutating func put(_ key: String, _ value: Node, before anchor: String) {
        insert(key, value) { pairs in pairs.firstIndex { $0.0.text == anchor } }
    }

    private mutating func insert(_ key: String, _ value: Node, position: ([(Node, Node)]) -> Int?) {
        guard case .mapping(let m) = self, m[key] == nil else { return put(key, value) }
        var pairs = m.map { ($0.key, $0.value) }
        pairs.insert((Node.text(key), value), at: position(pairs) ?? pairs.count)
        self = .mapping(Mapping(pairs, m.tag, m.style))
    }

    /// Removes `key` from a mapping.
    mutating func remove(_ key: String) {
        guard case .mapping(var m) = self, m[key] != nil else { return }
        m[key] = nil
        self = .mapping(m)
    }
}
