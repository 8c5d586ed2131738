// swift-tools-version:6.0
import PackageDescription

// The in-pod binary links a minimal static libcurl built from Debian's curl
// source by scripts/build-curl.sh (see Makefile); OpenSSL comes from
// Debian's -dev packages. CURL_STATIC_PREFIX lets a second checkout share one
// build of it.
let curlPrefix = Context.environment["CURL_STATIC_PREFIX"]
    ?? "\(Context.packageDirectory)/.deps/curl-static"

// The Makefile passes the git revision for `baowrap version`.
let revision = Context.environment["BW_BUILD_REVISION"] ?? "unknown"

// Swift targets importing CBaoWrap see curl/curl.h through its header; the C
// target's own cSettings are not passed on to them.
let curlInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I\(curlPrefix)/include"])]

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// The in-pod code must not pull in _StringProcessing/_RegexParser (about
// 1 MB of the 12 MB budget; String.contains(String) alone does it) or
// Swift concurrency (main stays synchronous). Without the implicit imports,
// a use of either fails to compile instead of growing the binary.
let lean: [SwiftSetting] = [
    .unsafeFlags([
        "-Xfrontend", "-disable-implicit-string-processing-module-import",
        "-Xfrontend", "-disable-implicit-concurrency-module-import",
    ]),
]

let package = Package(
    name: "baowrap",
    products: [
        .executable(name: "baowrap", targets: ["baowrap"]),
        .executable(name: "baowrapctl", targets: ["baowrapctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "CBaoWrap",
            cSettings: [
                .unsafeFlags(["-I\(curlPrefix)/include"]), .define("_GNU_SOURCE"),
                .define("BW_BUILD_REVISION", to: "\"\(revision)\""),
            ],
            linkerSettings: [
                .unsafeFlags(["-L\(curlPrefix)/lib"]),
                // No libcap: baowrap never changes capabilities, which is how
                // the child keeps exactly the sets it would have without it.
                .linkedLibrary("curl"), .linkedLibrary("ssl"), .linkedLibrary("crypto"),
            ]
        ),
        .target(
            name: "BaoWrapCore",
            dependencies: ["CBaoWrap"],
            swiftSettings: curlInclude + strict + lean
        ),
        .executableTarget(
            name: "baowrap",
            dependencies: ["BaoWrapCore", "CBaoWrap"],
            swiftSettings: curlInclude + strict + lean
        ),
        // `baowrapctl inject` lives in a library so its tests need no executable.
        .target(
            name: "BaoWrapInject",
            dependencies: ["BaoWrapCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: curlInclude + strict
        ),
        .executableTarget(
            name: "baowrapctl",
            dependencies: ["BaoWrapInject", "BaoWrapCore"],
            swiftSettings: curlInclude + strict
        ),
        .testTarget(
            name: "BaoWrapCoreTests",
            dependencies: ["BaoWrapCore", "CBaoWrap"],
            // Recorded OpenBao responses, read from disk by the tests.
            exclude: ["Fixtures"],
            swiftSettings: curlInclude
        ),
        .testTarget(
            name: "BaoWrapCtlTests",
            dependencies: ["BaoWrapInject"],
            exclude: ["Fixtures"],
            swiftSettings: curlInclude
        ),
    ],
    swiftLanguageModes: [.v6]
)
