import BaoWrapCore
import Yams

/// Rewrites one pod template (`metadata` + `spec`) so its selected
/// containers start through baowrap: an init container installs the binary
/// into an in-memory volume, each container's command is prefixed with
/// `/baowrap/baowrap --`, and the volume, BAOWRAP_* variables and
/// (optionally) a projected ServiceAccount token are added. Each step sets
/// a value only where it differs, so a second run changes nothing; inject
/// adds and updates what it owns and never removes anything.
struct PodTemplateRewriter {
    let plan: Plan
    let location: Location

    func rewrite(_ template: inout Node) throws(BaoWrapError) {
        guard var spec = template["spec"], spec.isMapping else { throw location.error("has no pod spec") }
        guard let containers = spec["containers"]?.items, !containers.isEmpty else {
            throw location.error("has no containers (spec.containers is missing or empty)")
        }
        var names: [String] = []
        for c in containers {
            guard let name = c["name"]?.text else { throw location.error("a container has no name") }
            names.append(name)
        }
        let selected = plan.containers ?? names
        for name in selected where !names.contains(name) {
            throw location.error("no container named \"\(name)\" (containers: \(names.joined(separator: ", ")))",
                                 hint: "init containers are never wrapped")
        }

        var volumes = spec.list(at: "volumes")
        try ensureVolume(&volumes, Layout.volume, source: "emptyDir",
                         enforced: [("medium", .text("Memory"))], defaults: [("sizeLimit", .text(Layout.volumeSizeLimit))])
        if plan.projectedToken {
            try ensureVolume(&volumes, Layout.tokenVolume, source: "projected", enforced: [("sources", tokenSources)], defaults: [])
        }
        spec.put("volumes", volumes)
        guard var inits = spec.list(at: "initContainers").items else { throw location.error("spec.initContainers is not a list") }
        try installer(&inits)
        spec.put("initContainers", .list(inits), before: "containers")
        var wrapped = containers
        for i in wrapped.indices where selected.contains(names[i]) {
            try PodTemplateRewriter(plan: plan, location: location.at(containers[i])).wrap(&wrapped[i], name: names[i])
        }
        spec.put("containers", .list(wrapped))
        template.put("spec", spec)
    }

    // MARK: the init container

    /// Creates or updates the init container that runs `baowrap install`.
    /// Security context and resources are set only when it is created, so
    /// a team's later tuning survives re-injection.
    private func installer(_ inits: inout [Node]) throws(BaoWrapError) {
        let command = Node.list([plan.imageBinary, "install", Layout.mountPath].map(Node.text))
        if let i = inits.firstIndex(where: { $0["name"]?.text == Layout.initContainer }) {
            var c = inits[i]
            if let image = plan.image { c.put("image", .text(image)) }
            c.put("command", command, after: ["image", "name"])
            var mounts = c.list(at: "volumeMounts")
            try ensureMount(&mounts, Layout.volume, at: Layout.mountPath, readOnly: false, container: Layout.initContainer)
            c.put("volumeMounts", mounts)
            inits[i] = c
            return
        }
        guard let image = plan.image else {
            throw location.error("needs the baowrap init image", hint: "pass --image IMAGE or annotate \(Layout.annotationPrefix)image")
        }
        // The same hardening as examples/kubernetes/init-container.yaml: the
        // copy needs no privilege and writes only to the volume.
        inits.insert(.map([
            ("name", .text(Layout.initContainer)),
            ("image", .text(image)),
            ("command", command),
            ("volumeMounts", .list([.map([("name", .text(Layout.volume)), ("mountPath", .text(Layout.mountPath))])])),
            ("securityContext", .map([
                ("allowPrivilegeEscalation", .flag(false)),
                ("readOnlyRootFilesystem", .flag(true)),
                ("capabilities", .map([("drop", .list([.text("ALL")]))])),
            ])),
            ("resources", .map([
                ("requests", .map([("cpu", .text("10m")), ("memory", .text("16Mi"))])),
                ("limits", .map([("memory", .text("32Mi"))])),
            ])),
        ]), at: 0)
    }

    // MARK: app containers

    private func wrap(_ c: inout Node, name: String) throws(BaoWrapError) {
        let command = c["command"]?.items
        if c["command"] != nil && c["command"]?.texts == nil {
            throw location.error("container \"\(name)\": command is not a list of strings")
        }
        if command?.first?.text != Layout.wrapper {
            // The original items are kept as they are, quoting included.
            guard let original = (command?.isEmpty == false ? command : nil) ?? plan.commandFor[name]?.map(Node.text) else {
                throw location.error(
                    "container \"\(name)\" has no command, and baowrap must be given the image's entrypoint to wrap it (inject never guesses)",
                    hint: "add command: to the container, or pass --command-for \(name)='[\"/entrypoint\",\"arg\"]': the image's ENTRYPOINT, then its CMD if the container has no args (docker inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' IMAGE)")
            }
            c.put("command", .list([.text(Layout.wrapper), .text("--")] + original), after: ["image", "name"])
        }

        var mounts = c.list(at: "volumeMounts")
        try ensureMount(&mounts, Layout.volume, at: Layout.mountPath, readOnly: true, container: name)
        if plan.projectedToken {
            try ensureMount(&mounts, Layout.tokenVolume, at: Layout.tokenMountPath, readOnly: true, container: name)
        }
        c.put("volumeMounts", mounts)

        var env = c.list(at: "env")
        guard env.items != nil else { throw location.error("container \"\(name)\": env is not a list") }
        for (variable, value) in plan.environment { setEnv(&env, variable, value) }
        if env.items?.isEmpty == false { c.put("env", env, after: ["args", "command", "image"]) }

        try location.within(container: name) { () throws(BaoWrapError) in try ConfigCheck.check(plan, env: env.items ?? []) }
    }

    /// Sets `variable` to a literal value, replacing a `valueFrom` or a
    /// different value in place; a new one goes at the end.
    private func setEnv(_ env: inout Node, _ variable: String, _ value: String) {
        let entry = Node.map([("name", .text(variable)), ("value", .text(value))])
        guard case .sequence(var list) = env else { return }
        if let i = list.firstIndex(where: { $0["name"]?.text == variable }) {
            if list[i]["value"]?.text == value && list[i]["valueFrom"] == nil { return }
            list[i] = entry
        } else {
            list.append(entry)
        }
        env = .sequence(list)
    }

    // MARK: volumes

    private var tokenSources: Node {
        .list([.map([("serviceAccountToken", .map([
            ("audience", .text(plan.audience)),
            ("expirationSeconds", .number(plan.tokenExpirationSeconds)),
            ("path", .text(Layout.tokenFile)),
        ]))])])
    }

    /// Adds the volume `name`, or brings an existing one of that name up to
    /// date: `enforced` fields are set, `defaults` only filled in. A
    /// volume of that name of another type is someone else's: an error.
    private func ensureVolume(_ volumes: inout Node, _ name: String, source: String,
                              enforced: [(String, Node)], defaults: [(String, Node)]) throws(BaoWrapError) {
        guard case .sequence(var list) = volumes else {
            throw location.error("spec.volumes is not a list")
        }
        guard let i = list.firstIndex(where: { $0["name"]?.text == name }) else {
            list.append(.map([("name", .text(name)), (source, .map(enforced + defaults))]))
            volumes = .sequence(list)
            return
        }
        guard var body = list[i][source], body.isMapping || body.tagName == .null else {
            throw location.error("has a volume named \"\(name)\" without \(source); inject needs that name for its own volume",
                                 hint: "rename that volume")
        }
        if !body.isMapping { body = .map([]) }
        for (k, v) in enforced { body.put(k, v) }
        for (k, v) in defaults where body[k] == nil { body.put(k, v) }
        var volume = list[i]
        volume.put(source, body)
        list[i] = volume
        volumes = .sequence(list)
    }

    /// Mounts volume `name` at `path`, or corrects an existing mount of it.
    private func ensureMount(_ mounts: inout Node, _ name: String, at path: String, readOnly: Bool,
                             container: String) throws(BaoWrapError) {
        guard case .sequence(var list) = mounts else {
            throw location.error("container \"\(container)\": volumeMounts is not a list")
        }
        if let other = list.first(where: { $0["mountPath"]?.text == path && $0["name"]?.text != name }) {
            throw location.error("container \"\(container)\" already mounts volume \"\(other["name"]?.text ?? "?")\" at \(path)",
                                 hint: "baowrap needs that path")
        }
        if let i = list.firstIndex(where: { $0["name"]?.text == name }) {
            var m = list[i]
            m.put("mountPath", .text(path))
            if readOnly { m.put("readOnly", .flag(true)) } else { m.remove("readOnly") }
            list[i] = m
        } else {
            var m = Node.map([("name", .text(name)), ("mountPath", .text(path))])
            if readOnly { m.put("readOnly", .flag(true)) }
            list.append(m)
        }
        mounts = .sequence(list)
    }
}
