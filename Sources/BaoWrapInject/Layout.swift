/// Where baowrap lives in an injected pod: the names and paths inject
/// writes, in one place so the rewriter, the docs (docs/inject.md) and the
/// tests agree. They match examples/kubernetes/init-container.yaml and the
/// init image (init-image/Dockerfile), so an injected manifest and a
/// hand-written one look the same.
public enum Layout {
    /// The annotation prefix for per-workload settings.
    public static let annotationPrefix = "baowrap.openbao.org/"

    /// The in-memory emptyDir holding the binary; inject owns a volume of
    /// this name and refuses to touch one that is not an emptyDir.
    public static let volume = "baowrap"
    /// Where the volume is mounted, in the init container and (read-only)
    /// in every wrapped container.
    public static let mountPath = "/baowrap"
    /// `baowrap install` writes the binary here; wrapped commands start with it.
    public static let wrapper = "/baowrap/baowrap"
    /// The binary's path inside the init image (init-image/Dockerfile keeps
    /// it outside /baowrap so the volume can be mounted there).
    public static let defaultImageBinary = "/usr/local/bin/baowrap"
    /// Sized for the static binary (12 MB budget) with headroom; a tmpfs
    /// counts against the pod's memory.
    public static let volumeSizeLimit = "16Mi"

    public static let initContainer = "baowrap-install"

    /// The projected ServiceAccount token (`--projected-token`).
    public static let tokenVolume = "baowrap-token"
    public static let tokenMountPath = "/var/run/secrets/baowrap"
    public static let tokenFile = "token"
    public static var tokenPath: String { tokenMountPath + "/" + tokenFile }
    public static let defaultAudience = "openbao"
    /// The shortest lifetime the API server accepts; the kubelet renews the
    /// file at 80% of it, and baowrap reads it only at start.
    public static let defaultTokenExpirationSeconds = 600
}
