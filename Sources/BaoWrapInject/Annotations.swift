import BaoWrapCore
import Yams

/// Per-workload settings from `baowrap.openbao.org/*` annotations, so one
/// command can rewrite a whole directory of workloads that differ in role
/// and secrets. Every inject option except -f, -o and --command-for has
/// one (`baowrap.openbao.org/role`, `.../secrets` as NAME=REF lines,
/// `.../addr`, ...), plus `.../inject: "false"` to leave a workload alone.
enum Annotations {
    struct Found {
        var settings = Settings()
        var skip = false
    }

    /// Reads the annotations of each object on the way to a pod template,
    /// outermost first (the Deployment, then its pod template), so the
    /// innermost wins as it does for a webhook that sees only the pod.
    static func read(_ annotationMaps: [Node]) throws(BaoWrapError) -> Found {
        var found = Found()
        for map in annotationMaps {
            guard case .mapping(let m) = map else { continue }
            for (k, v) in m {
                guard let key = k.text, key.hasPrefix(Layout.annotationPrefix) else { continue }
                let name = String(key.dropFirst(Layout.annotationPrefix.count))
                guard let value = v.text else {
                    throw BaoWrapError(.config, "annotation \(key) is not a string", hint: "quote it: \(key): \"...\"")
                }
                let origin = "annotation \(key)"
                if name == InjectOptions.skipAnnotation {
                    found.skip = !(try Settings.bool(value, origin: origin))
                    continue
                }
                guard let option = InjectOptions.annotated(name) else {
                    throw BaoWrapError(.config, "unknown annotation \(key) (typo?)",
                                       hint: "baowrapctl help lists each option's annotation")
                }
                found.settings.set(option, option.arity == .repeated ? Settings.listEntries(value) : [value], origin: origin)
            }
        }
        return found
    }
}
