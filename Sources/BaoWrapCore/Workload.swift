/// The command baowrap runs and what every start of it shares: argv and the
/// inherited environment. Each start gets the values of one fetch, in
/// locked memory only until the spawn: the first start and every restart
/// of the watch alike.
public struct Workload {
    let argv: [UnsafeMutablePointer<CChar>?]
    let inherited: [EnvironmentEntry]
    /// argv[0], for messages.
    let name: String

    public init(commandIndex: Int, inherited: [EnvironmentEntry]) {
        argv = ProcessInput.argumentPointers[commandIndex...].map { Optional($0) } + [nil]
        self.inherited = inherited
        name = ProcessInput.arguments[commandIndex].description
    }

    /// Builds the environment (a failure throws and changes nothing), runs
    /// `beforeSpawn` (a restart stops the running child there; a status from
    /// it cancels the start), spawns, and wipes the environment block.
    /// Returns nil once the command runs, else the status to exit with.
    public func start(_ resolved: [ResolvedVariable], unset: Set<String>, supervisor: Supervisor, log: Logger,
                      beforeSpawn: () -> ExitStatus? = { nil }) throws(BaoWrapError) -> ExitStatus? {
        let env = try ChildEnvironment(inherited: inherited, resolved: resolved, unset: unset)
        defer { env.wipe() }
        if let status = beforeSpawn() { return status }
        if case .failure(let f) = supervisor.spawn(argv: argv, envp: env.pointers) {
            log.error(f.error(command: name), event: "exec_failed")
            return f.status
        }
        return nil
    }
}
