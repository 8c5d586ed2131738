import CBaoWrap
import Glibc

// Each syscall baowrap makes has its one call site here; the typed wrappers
// above them decide which errno values are tolerable.

@inline(__always) func system_mmap(_ len: Int, _ prot: CInt, _ flags: CInt, _ fd: CInt) -> UnsafeMutableRawPointer? {
    let p = mmap(nil, len, prot, flags, fd, 0)
    return p == MAP_FAILED ? nil : p
}
@inline(__always) func system_munmap(_ p: UnsafeMutableRawPointer, _ len: Int) -> CInt { munmap(p, len) }
@inline(__always) func system_mlock(_ p: UnsafeRawPointer, _ len: Int) -> CInt { mlock(p, len) }
@inline(__always) func system_munlock(_ p: UnsafeRawPointer, _ len: Int) -> CInt { munlock(p, len) }
@inline(__always) func system_madvise(_ p: UnsafeMutableRawPointer, _ len: Int, _ advice: CInt) -> CInt { madvise(p, len, advice) }
@inline(__always) func system_ftruncate(_ fd: CInt, _ len: Int) -> CInt { ftruncate(fd, off_t(len)) }
@inline(__always) func system_close(_ fd: CInt) -> CInt { close(fd) }
@inline(__always) func system_shutdown(_ fd: CInt, _ how: CInt) -> CInt { shutdown(fd, how) }
@inline(__always) func system_open(_ path: UnsafePointer<CChar>, _ flags: CInt, _ mode: mode_t = 0) -> CInt { open(path, flags, mode) }
@inline(__always) func system_fstat(_ fd: CInt, _ st: inout stat) -> CInt { fstat(fd, &st) }
@inline(__always) func system_read(_ fd: CInt, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, buf, n) }
@inline(__always) func system_write(_ fd: CInt, _ buf: UnsafeRawPointer, _ n: Int) -> Int { write(fd, buf, n) }
@inline(__always) func system_kill(_ pid: pid_t, _ sig: CInt) -> CInt { kill(pid, sig) }
@inline(__always) func system_waitpid(_ pid: pid_t, _ status: inout CInt, _ options: CInt) -> pid_t { waitpid(pid, &status, options) }
@inline(__always) func system_poll(_ fds: inout pollfd, _ timeout: CInt) -> CInt { poll(&fds, 1, timeout) }
@inline(__always) func system_getpid() -> pid_t { getpid() }
@inline(__always) func system_getpgrp() -> pid_t { getpgrp() }
@inline(__always) func system_isatty(_ fd: CInt) -> CInt { isatty(fd) }
@inline(__always) func system_tcgetpgrp(_ fd: CInt) -> pid_t { tcgetpgrp(fd) }
@inline(__always) func system_memfd_secret() -> CInt { bw_memfd_secret() }

/// Reads the whole file at `path` (at most `limit` bytes) into `sink`, which
/// receives each chunk; used for JWT files, so the bytes go straight into
/// locked memory. The corresponding C functions are `open` and `read`.
func readFile(_ path: String, limit: Int, into sink: (UnsafeRawBufferPointer) throws(BaoWrapError) -> Void) throws(BaoWrapError) {
    let fd: CInt
    switch valueOrErrno({ system_open(path, O_RDONLY | O_CLOEXEC) }) {
    case .success(let v): fd = v
    case .failure(let e): throw BaoWrapError(.config, "cannot open \(path)", errno: e)
    }
    defer { _ = system_close(fd) }
    var total = 0
    // A stack chunk would leave a copy of the JWT on the stack; read straight
    // into a locked scratch page instead.
    let scratch = try LockedRegion(size: 4096, kind: .secret)
    while true {
        let n: Int
        switch valueOrErrno({ system_read(fd, scratch.base, scratch.size) }) {
        case .success(let v): n = v
        case .failure(let e): throw BaoWrapError(.config, "cannot read \(path)", errno: e)
        }
        if n == 0 { break }
        total += n
        if total > limit { throw BaoWrapError(.config, "\(path) is larger than \(limit) bytes") }
        try sink(UnsafeRawBufferPointer(start: scratch.base, count: n))
        scratch.wipe()
    }
}
