import BaoWrapCore
import Yams

/// `baowrapctl inject`: a pure function from a manifest stream to the same
/// stream with every pod template rewritten to start through baowrap.
public enum Injector {
    /// Rewrites `text` (YAML documents or JSON). Throws on the first problem;
    /// nothing is returned half-done.
    public static func inject(_ text: String, settings: Settings) throws(BaoWrapError) -> String {
        // Flag values are checked up front, so a bad one fails even when
        // no document has a pod template.
        _ = try Plan(settings)
        var stream = try DocumentStream(text)
        for i in stream.documents.indices {
            guard let original = stream.documents[i].node else { continue }
            var document = original
            try Workloads.visit(&document, firstLine: stream.documents[i].firstLine) { template, annotations, location throws(BaoWrapError) in
                let found = try location.within { () throws(BaoWrapError) in try Annotations.read(annotations) }
                guard !found.skip else { return }
                let plan = try location.within { () throws(BaoWrapError) in try Plan(settings.overridden(by: found.settings)) }
                try PodTemplateRewriter(plan: plan, location: location).rewrite(&template)
            }
            if document != original { stream.documents[i].rewritten = document }
        }
        return try stream.render()
    }
}
