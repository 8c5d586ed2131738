import BaoWrapCore
import Yams

/// Where a pod template is, for messages: "line 12: Deployment web".
struct Location: CustomStringConvertible {
    var line: Int
    var object: String
    /// Added to a node's line in its document to get the line in the input.
    var offset: Int
    var description: String { "line \(line): \(object)" }

    /// The same object, pointing at `node`'s line (a container's).
    func at(_ node: Node) -> Location {
        var l = self
        if let mark = node.mark { l.line = offset + mark.line }
        return l
    }

    func error(_ message: String, hint: String? = nil) -> BaoWrapError {
        BaoWrapError(.config, "\(self): \(message)", hint: hint)
    }

    /// Runs `body`, putting this location (and `container`) in front of
    /// any error it throws; the error's variable moves into the message so
    /// the location comes first.
    func within<T>(container: String? = nil, _ body: () throws(BaoWrapError) -> T) throws(BaoWrapError) -> T {
        do {
            return try body()
        } catch {
            var e = error
            e.message = "\(self): " + (container.map { "container \"\($0)\": " } ?? "")
                + (e.variable.map { "\($0): " } ?? "") + e.message
            e.variable = nil
            throw e
        }
    }
}

/// The Kubernetes objects whose pods inject rewrites, and where each keeps
/// its pod template; `List` objects are walked item by item. Every other
/// object is left exactly as it is.
enum Workloads {
    /// Kind → (API group, path to the pod template). A Pod is its own
    /// template: both have `metadata` and `spec`.
    static let templates: [String: (group: String, path: [String])] = [
        "Pod": ("", []),
        "Deployment": ("apps", ["spec", "template"]),
        "StatefulSet": ("apps", ["spec", "template"]),
        "DaemonSet": ("apps", ["spec", "template"]),
        "ReplicaSet": ("apps", ["spec", "template"]),
        "Job": ("batch", ["spec", "template"]),
        "CronJob": ("batch", ["spec", "jobTemplate", "spec", "template"]),
    ]

    /// Gets a pod template to rewrite in place, with the `annotations`
    /// mappings found on the way to it, outermost first.
    typealias Rewrite = (_ template: inout Node, _ annotations: [Node], _ location: Location) throws(BaoWrapError) -> Void

    /// Visits every pod template in one document. `firstLine` is the
    /// document's line in the input, so messages point at the input.
    static func visit(_ document: inout Node, firstLine: Int, _ rewrite: Rewrite) throws(BaoWrapError) {
        try visit(&document, firstLine: firstLine, prefix: "", inherited: nil, rewrite)
    }

    private static func visit(_ object: inout Node, firstLine: Int, prefix: String,
                              inherited: (kind: String, apiVersion: String)?, _ rewrite: Rewrite) throws(BaoWrapError) {
        let line = firstLine + (object.mark?.line ?? 1) - 1
        if prefix.isEmpty, object.tagName == .null { return }  // an empty document: `---` and comments only
        guard object.isMapping else {
            throw BaoWrapError(.config, "line \(line): \(prefix)not a Kubernetes object (a mapping with apiVersion and kind)")
        }
        // The items of a typed list (a PodList from the API) carry no kind.
        guard let kind = object["kind"]?.text ?? inherited?.kind,
              let apiVersion = object["apiVersion"]?.text ?? inherited?.apiVersion else {
            throw BaoWrapError(.config, "line \(line): \(prefix)not a Kubernetes object: no apiVersion or kind")
        }
        let name = object["metadata"]?["name"]?.text ?? object["metadata"]?["generateName"]?.text ?? "(unnamed)"
        let location = Location(line: line, object: prefix + kind + " " + name, offset: firstLine - 1)

        if kind.hasSuffix("List"), case .sequence(var items)? = object["items"] {
            let itemKind = kind == "List" ? nil : (String(kind.dropLast(4)), apiVersion)
            for i in items.indices {
                try visit(&items[i], firstLine: firstLine, prefix: "\(prefix)\(kind) item \(i + 1): ",
                          inherited: itemKind, rewrite)
            }
            object.put("items", .sequence(items))
            return
        }
        guard let t = templates[kind], group(of: apiVersion) == t.group else { return }
        try descend(&object, path: t.path[...], annotations: [], location, rewrite)
    }

    private static func descend(_ node: inout Node, path: ArraySlice<String>, annotations: [Node],
                                _ location: Location, _ rewrite: Rewrite) throws(BaoWrapError) {
        var annotations = annotations
        if let a = node["metadata"]?["annotations"] { annotations.append(a) }
        guard let key = path.first else {
            try rewrite(&node, annotations, location)
            return
        }
        guard var child = node[key], child.isMapping else {
            throw location.error("no \(path.joined(separator: ".")) (the pod template) under the \(key == "spec" ? "object" : "spec")")
        }
        try descend(&child, path: path.dropFirst(), annotations: annotations, location, rewrite)
        node.put(key, child)
    }

    /// "apps/v1" → "apps"; "v1" (the core group) → "".
    static func group(of apiVersion: String) -> String {
        guard let slash = apiVersion.firstIndex(of: "/") else { return "" }
        return String(apiVersion[..<slash])
    }
}
