import BaoWrapCore
import Testing
@testable import BaoWrapInject

/// baowrap's options reach inject from its own table, so names cannot drift.
@Test func options_everyBaowrapFlagIsPassedThroughAsItsVariable() {
    for spec in Options.table where spec.flag != nil && spec.onlyFor == nil {
        let o = InjectOptions.named(spec.flag!)
        #expect(o?.baowrap == spec.key, "--\(spec.flag!)")
    }
}

@Test func options_namesAndAnnotationsAreUnique() {
    let names = InjectOptions.table.map(\.name)
    #expect(Set(names).count == names.count)
    let annotations = InjectOptions.table.compactMap(\.annotation) + [InjectOptions.skipAnnotation]
    #expect(Set(annotations).count == annotations.count)
    #expect(InjectOptions.annotated("secrets")?.baowrap == .secret)
    #expect(InjectOptions.annotated("role")?.baowrap == .role)
    #expect(InjectOptions.annotated("addr")?.baowrap == .addr)
}

@Test func options_helpListsEveryFlagVariableAndAnnotation() {
    let help = InjectOptions.helpText
    for o in InjectOptions.table {
        #expect(help.contains("--\(o.name)"))
        if let a = o.annotation { #expect(help.contains(Layout.annotationPrefix + a)) }
        if let key = o.baowrap { #expect(help.contains(Options.spec(key).variables[0])) }
    }
}

@Test func commandLine_parsesValuesAndRepeats() throws {
    let cmd = try InjectCommandLine.parse(["inject", "-f", "in.yaml", "--role=app", "--secret", "A=s/a#k",
                                           "--secret", "B=s/b#k", "--projected-token", "-o", "out.yaml"])
    guard case .inject(let s) = cmd else { Issue.record("not inject"); return }
    #expect(s.input == "in.yaml" && s.output == "out.yaml")
    #expect(s.value("role") == "app")
    #expect(s.entries("secret") == ["A=s/a#k", "B=s/b#k"])
    #expect(try s.isOn("projected-token"))
}

@Test(arguments: [
    ["inject", "--nope"],
    ["inject", "stray"],
    ["inject", "--role"],
    ["inject", "--projected-token=yes"],
    ["frobnicate"],
    [],
])
func commandLine_refusesBadArguments(_ args: [String]) {
    #expect(throws: BaoWrapError.self) { _ = try InjectCommandLine.parse(args) }
}

@Test func plan_projectedTokenPointsBaowrapAtIt() throws {
    guard case .inject(let s) = try InjectCommandLine.parse(["inject", "--projected-token", "--audience", "vault",
                                                             "--token-expiration", "1h"]) else { return }
    let plan = try Plan(s)
    #expect(plan.tokenExpirationSeconds == 3600)
    let env = Dictionary(uniqueKeysWithValues: plan.environment.map { ($0.name, $0.value) })
    #expect(env["BAOWRAP_JWT_FILE"] == Layout.tokenPath)
    #expect(env["BAOWRAP_EXPECT_AUDIENCE"] == "vault")
}

@Test(arguments: [
    ["--token-expiration", "5m"],
    ["--token-expiration", "600"],
    ["--command-for", "app=/bin/app"],
    ["--command-for", "app=[]"],
    ["--command-for", "app=[1]"],
    ["--image-binary", "baowrap"],
    ["--image", " "],
])
func plan_refusesBadValues(_ args: [String]) throws {
    guard case .inject(let s) = try InjectCommandLine.parse(["inject"] + args) else { return }
    #expect(throws: BaoWrapError.self) { _ = try Plan(s) }
}

/// An annotation replaces its flag as a whole; `inject: "false"` skips.
@Test func annotations_overrideFlagsAndListsSplitLikeBaowrap() throws {
    let found = try Annotations.read([
        .map([("baowrap.openbao.org/role", .text("outer")), ("other.io/x", .text("ignored"))]),
        .map([("baowrap.openbao.org/role", .text("inner")),
              ("baowrap.openbao.org/secrets", .text("A=s/a#k\nB=s/b#k, C=s/c#k\n"))]),
    ])
    #expect(!found.skip)
    #expect(found.settings.value("role") == "inner")
    #expect(found.settings.entries("secret") == ["A=s/a#k", "B=s/b#k", "C=s/c#k"])
    #expect(try Annotations.read([.map([("baowrap.openbao.org/inject", .text("false"))])]).skip)
    #expect(throws: BaoWrapError.self) { _ = try Annotations.read([.map([("baowrap.openbao.org/inject", .text("maybe"))])]) }
}
