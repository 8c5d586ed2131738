import BaoWrapCore
import Testing
import Yams
@testable import BaoWrapInject

/// Cutting a stream into documents and putting it back together: an input
/// with nothing to rewrite comes out byte for byte, whatever its layout.
@Test(arguments: [
    "",
    "\n",
    "# only a comment",
    "a: 1",
    "a: 1\n",
    "---\na: 1\n---\nb: 2\n",
    "a: 1\n...\n---\nb: 2\n...\n",
    "%YAML 1.1\n---\na: 1\n...\n%YAML 1.1\n---\nb: 2\n",
    "a: 1\r\n---\r\nb: 2\r\n",
    "k: |\n  --- not a marker\n  ...nor this\n",
    "--- {a: 1}\n--- [1, 2]\n",
    "a: 1\n# trailing\n\n# before b\n---\nb: 2",
])
func stream_unchangedInputRoundTrips(_ text: String) throws {
    let stream = try DocumentStream(text)
    #expect(try stream.render() == text)
}

@Test func stream_splitsAtMarkersOnly() throws {
    let stream = try DocumentStream("k: |\n  --- inside\n---\nb: 2\n...\nc: 3\n")
    #expect(stream.documents.compactMap { $0.node?["k"]?.text ?? $0.node?["b"]?.string ?? $0.node?["c"]?.string }
            == ["--- inside\n", "2", "3"])
    #expect(stream.documents.map(\.firstLine) == [1, 3, 6])
}

/// Comments that introduce the next document (from the first column-0 `#`
/// after a body) travel with it, so they survive when it is rewritten.
@Test func stream_leadingCommentsBelongToTheNextDocument() throws {
    let stream = try DocumentStream("a: 1\n\n# about b\n---\nb: 2\n")
    #expect(stream.documents.map(\.source) == ["a: 1\n\n", "# about b\n---\nb: 2\n"])
}

@Test func stream_rewrittenDocumentKeepsItsHeadAndEndMarker() throws {
    var stream = try DocumentStream("---\n# Source: x.yaml\na: 1 # lost\n...\n")
    stream.documents[0].rewritten = Node.map([("a", .number(2))])
    #expect(try stream.render() == "---\n# Source: x.yaml\na: 2\n...\n")
}

@Test func stream_jsonInputIsWrittenAsJSON() throws {
    var stream = try DocumentStream("{\n    \"b\": 1,\n    \"a\": [true, null, \"x\"]\n}\n")
    #expect(stream.format == .json)
    var node = try #require(stream.documents[0].node)
    node.put("c", .text("600"))
    stream.documents[0].rewritten = node
    #expect(try stream.render() == """
        {
            "b": 1,
            "a": [
                true,
                null,
                "x"
            ],
            "c": "600"
        }

        """)
}

@Test func stream_flowMappingYAMLIsNotJSON() throws {
    #expect(try DocumentStream("{a: 1}\n").format == .yaml)
}

@Test func stream_errorsPointAtTheInputLine() {
    #expect {
        _ = try DocumentStream("a: 1\n---\nb: 2\nc: [\n")
    } throws: { e in
        (e as? BaoWrapError)?.rendered.hasPrefix("input is not valid YAML or JSON: line 5 column 1:") == true
    }
}

/// Strings inject writes stay strings for a YAML 1.1 reader such as
/// Kubernetes' (where `y`, `on` and `600` are not strings).
@Test(arguments: ["true", "y", "N", "on", "600", "0x1F", "1e3", "~", "null", "", "2024-01-01", "plain", "a: b", "- x", "#x"])
func nodes_textStaysAString(_ s: String) throws {
    let yaml = try Yams.serialize(node: Node.map([("v", .text(s))]))
    let back = try #require(try Yams.compose(yaml: yaml))
    #expect(back["v"]?.text == s, "\(yaml)")
    if ["y", "N", "on"].contains(s) { #expect(yaml.contains("\"")) }
}

@Test func stream_rewrittenCRLFDocumentKeepsCRLF() throws {
    var stream = try DocumentStream("---\r\n# head\r\na: 1\r\n")
    stream.documents[0].rewritten = Node.map([("a", .number(2)), ("b", .list([.text("x")]))])
    #expect(try stream.render() == "---\r\n# head\r\na: 2\r\nb:\r\n- x\r\n")
}
