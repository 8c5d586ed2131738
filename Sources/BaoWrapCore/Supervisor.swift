import CBaoWrap
import Glibc

/// The workload's parent for its whole life, modelled on tini: spawns it
/// with the original signal mask and default dispositions in its own
/// process group (with the terminal's foreground when there is one),
/// forwards every signal it receives, reaps every zombie, and reports the
/// child's exit status. Only this file and Signals.swift touch signals and
/// processes.
public final class Supervisor: InterruptSource {
    let signals: Signals
    let log: Logger
    /// Forward to the child's whole process group instead of the child.
    let signalGroup: Bool
    public private(set) var child: pid_t = 0
    /// The current child's status once it exited.
    private var exited: ExitStatus?
    /// A SIGTERM, SIGINT or SIGQUIT was forwarded: the workload is being
    /// shut down, so no task runs any more and no new child is started.
    public private(set) var stopping = false

    public init(signals: Signals, log: Logger, signalGroup: Bool) {
        self.signals = signals
        self.log = log
        self.signalGroup = signalGroup
    }

    /// Makes baowrap the reaper of orphaned descendants when it is not PID 1
    /// (PID 1 is already). The corresponding C function is `prctl`.
    public static func becomeSubreaper() {
        if system_getpid() != 1 { _ = bw_set_child_subreaper() }
    }

    /// Spawns `argv[0]` (searched in PATH) with `envp`. The errno of a failed
    /// exec comes back from glibc's posix_spawn, so "not found" and "not
    /// executable" are told apart without a pipe.
    public func spawn(argv: [UnsafeMutablePointer<CChar>?], envp: [UnsafeMutablePointer<CChar>?]) -> Result<pid_t, SpawnFailure> {
        var pid: pid_t = 0
        var mask = signals.original
        // Hand over the terminal only when baowrap is in its foreground; a
        // background job must not grab it.
        let tty: Int32 = system_isatty(0) == 1 && system_tcgetpgrp(0) == system_getpgrp() ? 0 : -1
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in
                bw_spawn(&pid, a[0], a.baseAddress, e.baseAddress, &mask, tty)
            }
        }
        if rc != 0 { return .failure(SpawnFailure(errno: Errno(rawValue: rc), execSize: Supervisor.execSize(argv) + Supervisor.execSize(envp))) }
        child = pid
        signals.childStarted = true
        exited = nil
        return .success(pid)
    }

    /// What a NULL-terminated string vector costs execve: every string with
    /// its NUL, and a pointer each.
    static func execSize(_ vector: [UnsafeMutablePointer<CChar>?]) -> Int {
        vector.reduce(0) { sum, p in sum + MemoryLayout<UnsafeRawPointer>.size + (p.map { strlen($0) + 1 } ?? 0) }
    }

    public struct SpawnFailure: Error {
        public let errno: Errno
        /// Bytes of argv and environ the exec was asked to carry.
        public let execSize: Int

        public var status: ExitStatus {
            switch errno {
            case .noSuchFileOrDirectory: return .commandNotFound
            // Too much environment, or no memory to start: the wrapper's
            // failure, not the command's.
            case .argListTooLong, .noMemory, .wouldBlock: return .wrapperFailure
            default: return .notExecutable
            }
        }

        /// E2BIG reads "Argument list too long", which points at the command
        /// line when it is nearly always the injected environment.
        public func error(command: String) -> BaoWrapError {
            guard errno == .argListTooLong else { return BaoWrapError(.system, "cannot execute \"\(command)\"", errno: errno) }
            return BaoWrapError(.system, "cannot execute \"\(command)\": its arguments and environment (\(execSize) bytes) are too large for execve",
                                hint: "the kernel allows a quarter of the stack limit (ulimit -s) in total and 128 KiB per variable; inject fewer or smaller secrets")
        }
    }

    /// Waits for signals and the child until the child exits; returns its
    /// status. `task` runs whenever it is due, between signals, until the
    /// workload is being stopped; a status it returns ends supervision.
    public func supervise(_ task: (any SupervisedTask)? = nil) -> ExitStatus {
        for s in signals.takeDeferred() {
            if Signal.termination.contains(s) { stopping = true }
            forward(s)
        }
        while true {
            if let status = pump() { return status }
            let due = stopping ? -1 : task.map { min(max($0.dueInMilliseconds, 0), Int(Int32.max)) } ?? -1
            if due == 0, let task {
                if let status = task.run(self) { return status }
                continue
            }
            var pfd = pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)
            if system_poll(&pfd, CInt(due)) < 0 && Errno.current != .interrupted {
                log.error(.system("poll", .current))
                // Without a way to wait, keep the child's lifecycle anyway
                // by blocking in waitpid.
                return waitBlocking()
            }
        }
    }

    /// Forwards every pending signal but SIGCHLD and reaps every zombie.
    /// Returns the child's status once it exited. Tasks call it (through
    /// `checkInterrupt`) while they wait on the network, so signals keep
    /// reaching the child meanwhile.
    @discardableResult
    public func pump() -> ExitStatus? {
        for s in signals.drain() where s != .chld {
            if Signal.termination.contains(s) { stopping = true }
            forward(s)
        }
        if let status = reap() { exited = status }
        return exited
    }

    public var fd: Int32 { signals.fd }

    /// Lets a task's HTTP wait end as soon as the child has exited.
    public func checkInterrupt() throws(BaoWrapError) {
        if pump() != nil { throw BaoWrapError(.interrupted, "the command exited") }
    }

    /// Ends the child: `signal` (to it or its group, as forwarding does), up
    /// to `timeout` for it to exit, then SIGKILL. Signals keep being
    /// forwarded meanwhile. What is left of its process group is killed
    /// too, so nothing of this generation outlives it. Returns its status.
    public func stop(with signal: Signal, timeout: Duration) -> ExitStatus {
        let deadline = Deadline(after: timeout)
        var killed = false
        if pump() == nil { forward(signal) }
        while true {
            if let status = pump() {
                // ESRCH: the group is empty already.
                _ = system_kill(-child, SIGKILL)
                return status
            }
            if !killed && deadline.hasPassed {
                log.warn("stop_timeout", "the command did not exit within \(DurationText.render(timeout)) of \(signal); sending SIGKILL",
                         [("pid", .int(Int(child)))])
                _ = system_kill(-child, SIGKILL)
                killed = true
            }
            var pfd = pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0)
            _ = system_poll(&pfd, killed ? -1 : CInt(max(1, min(deadline.remainingMilliseconds, Int(Int32.max)))))
        }
    }

    /// Delivers `s` to the child (or its group). The corresponding C function
    /// is `kill`.
    public func forward(_ s: Signal) {
        guard child > 0 else { return }
        let target = signalGroup ? -child : child
        switch nothingOrErrno(retryOnInterrupt: false, { system_kill(target, s.rawValue) }) {
        case .success:
            log.debug("signal_forwarded", "forwarded \(s)", [("signal", .int(Int(s.rawValue)))])
        case .failure(.noSuchProcess):
            // The child (or its group) is already gone; its status is on
            // its way through SIGCHLD.
            break
        case .failure(let e):
            log.warn("signal_forward_failed", "could not forward \(s): \(e)")
        }
    }

    /// Reaps every zombie; returns the main child's status once it exited.
    /// The corresponding C function is `waitpid`.
    func reap() -> ExitStatus? {
        var result: ExitStatus?
        while true {
            var status: CInt = 0
            let pid = system_waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                if pid == child { result = Supervisor.decode(status) }
                continue
            }
            if pid < 0 && Errno.current == .interrupted { continue }
            // 0: children left but none exited; ECHILD: no children at all.
            return result
        }
    }

    private func waitBlocking() -> ExitStatus {
        while true {
            var status: CInt = 0
            let pid = system_waitpid(-1, &status, 0)
            if pid == child { return Supervisor.decode(status) }
            if pid < 0 && Errno.current != .interrupted { return .wrapperFailure }
        }
    }

    static func decode(_ status: CInt) -> ExitStatus {
        if bw_wifexited(status) != 0 { return .exited(bw_wexitstatus(status)) }
        if bw_wifsignaled(status) != 0 { return .signaled(bw_wtermsig(status)) }
        return .wrapperFailure
    }
}

/// Work the supervisor runs between signals while the child lives (the
/// rotation watch). The supervisor knows only when it is due.
public protocol SupervisedTask: AnyObject {
    /// Milliseconds until `run` is due; 0 or less: now.
    var dueInMilliseconds: Int { get }
    /// Does the work; may stop, signal or replace the child through the
    /// supervisor. A status ends supervision with it.
    func run(_ supervisor: Supervisor) -> ExitStatus?
}
