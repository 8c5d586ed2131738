import CBaoWrap
import Glibc
import Testing
@testable import BaoWrapCore

// Raw wait statuses as Linux encodes them: exit code in bits 8-15, the
// terminating signal in bits 0-6, the core-dump flag in bit 7.
@Test(arguments: [
    (CInt(0), BaoWrapCore.ExitStatus.exited(0), CInt(0)),
    (3 << 8, .exited(3), 3),
    (255 << 8, .exited(255), 255),
    (SIGKILL, .signaled(SIGKILL), 137),
    (SIGSEGV | 0x80, .signaled(SIGSEGV), 139),
    (SIGTERM, .signaled(SIGTERM), 143),
    (SIGINT, .signaled(SIGINT), 130),
    (64, .signaled(64), 192),
])
func decode_waitStatus(raw: CInt, status: BaoWrapCore.ExitStatus, code: CInt) {
    #expect(Supervisor.decode(raw) == status)
    #expect(status.code == code)
}

@Test(arguments: [
    (ENOENT, BaoWrapCore.ExitStatus.commandNotFound),
    (EACCES, .notExecutable),
    (ENOEXEC, .notExecutable),
    (ENOTDIR, .notExecutable),
    (ELOOP, .notExecutable),
    (E2BIG, .wrapperFailure),
    (ENOMEM, .wrapperFailure),
    (EAGAIN, .wrapperFailure),
])
func spawnFailure_status(errno: CInt, status: BaoWrapCore.ExitStatus) {
    #expect(Supervisor.SpawnFailure(errno: Errno(rawValue: errno), execSize: 0).status == status)
}

@Test func spawnFailure_e2big_namesTheEnvironmentAndItsSize() {
    let e = Supervisor.SpawnFailure(errno: .argListTooLong, execSize: 2_623_735).error(command: "app")
    #expect(e.errorClass == .system)
    #expect(e.rendered.hasPrefix("cannot execute \"app\": its arguments and environment (2623735 bytes) are too large"))
    #expect(!e.rendered.includes("Argument list too long"))
}

@Test func spawnFailure_otherErrors_keepTheErrnoText() {
    let e = Supervisor.SpawnFailure(errno: .noSuchFileOrDirectory, execSize: 0).error(command: "app")
    #expect(e.rendered == "cannot execute \"app\": No such file or directory")
}

@Test func execSize_countsStringsTerminatorsAndPointers() {
    let raw = RawEnvironment(["ab", "", "cdef"])
    let vector = raw.pointers.map { Optional($0) } + [nil]
    #expect(Supervisor.execSize(vector) == (3 + 1 + 5) + 4 * MemoryLayout<UnsafeRawPointer>.size)
}

@Test func supervisedSignals_everyCatchableOneButFaultsAndTerminalStops() {
    var set = sigset_t()
    bw_supervised_signals(&set)
    for s in [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGCHLD, SIGPIPE, SIGCONT, SIGTSTP,
              SIGURG, SIGXCPU, SIGPWR, bw_sigrtmin(), bw_sigrtmax()] {
        #expect(bw_sigismember(&set, s) == 1, "signal \(s)")
    }
    for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT, SIGTTIN, SIGTTOU] {
        #expect(bw_sigismember(&set, s) == 0, "signal \(s)")
    }
}

@Test(arguments: [("TERM", SIGTERM), ("SIGTERM", SIGTERM), ("sigusr1", SIGUSR1), ("15", SIGTERM), ("winch", SIGWINCH)])
func signal_parsesNamesAndNumbers(text: String, number: CInt) {
    #expect(Signal(name: text) == Signal(rawValue: number))
}

@Test func signal_rejectsUnknownNames() {
    #expect(Signal(name: "NOPE") == nil && Signal(name: "0") == nil && Signal(name: "65") == nil)
}

@Test func signal_onlyTerminationRequestsStopAFetch() {
    #expect(Signal.stopBeforeStart == [.hup, .int, .quit, .term])
}
