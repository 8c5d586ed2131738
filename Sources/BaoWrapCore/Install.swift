import Glibc

/// `baowrap install DEST_DIR`: copies the running binary to DEST_DIR/baowrap
/// the way an init container needs it, with no shell and no cp in the
/// image: written to a temporary name, fsync'ed, made 0555, renamed into
/// place (so the app container never sees half a binary), and the directory
/// fsync'ed.
public enum Installer {
    /// `source` is where the running binary can be read: /proc/self/exe,
    /// or argv[0] when /proc is not mounted (a bare chroot) and argv[0]
    /// is a path, as in an image's ENTRYPOINT ["/baowrap", "install", ...].
    public static func install(into directory: String, sources: [String]) throws(BaoWrapError) -> (path: String, bytes: Int) {
        func fail(_ what: String, _ e: Errno = .current) -> BaoWrapError {
            BaoWrapError(.system, "install: \(what)", errno: e)
        }
        var st = stat()
        guard stat(directory, &st) == 0 else { throw fail("destination \(directory) is not usable") }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw fail("destination \(directory) is not a directory", .notDirectory) }

        var opened: (fd: CInt, path: String)?
        var lastError = Errno.noSuchFileOrDirectory
        for candidate in sources {
            switch valueOrErrno({ system_open(candidate, O_RDONLY | O_CLOEXEC) }) {
            case .success(let fd): opened = (fd, candidate)
            case .failure(let e): lastError = e
            }
            if opened != nil { break }
        }
        guard let (input, source) = opened else {
            throw fail("cannot open the running binary (tried \(sources.joined(separator: ", ")))", lastError)
        }
        defer { _ = system_close(input) }

        let final = directory + "/baowrap"
        let temp = directory + "/.baowrap.install.\(getpid())"
        let output: CInt
        switch valueOrErrno({ system_open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o700) }) {
        case .success(let fd): output = fd
        case .failure(let e): throw fail("cannot create \(temp)", e)
        }
        var committed = false
        defer {
            _ = system_close(output)
            if !committed { unlink(temp) }
        }
        var total = 0
        let chunk = 256 * 1024
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n: Int
            switch valueOrErrno({ system_read(input, buf, chunk) }) {
            case .success(let v): n = v
            case .failure(let e): throw fail("reading \(source)", e)
            }
            if n == 0 { break }
            var off = 0
            while off < n {
                switch valueOrErrno({ system_write(output, buf + off, n - off) }) {
                case .success(let w): off += w
                case .failure(let e): throw fail("writing \(temp)", e)
                }
            }
            total += n
        }
        guard fchmod(output, 0o555) == 0 else { throw fail("chmod 0555 \(temp)") }
        guard fsync(output) == 0 else { throw fail("fsync \(temp)") }
        guard rename(temp, final) == 0 else { throw fail("rename to \(final)") }
        committed = true
        // Make the rename itself durable.
        let dir = system_open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            _ = system_close(dir)
        }
        return (final, total)
    }
}
