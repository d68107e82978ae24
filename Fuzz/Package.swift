// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for clusterd's parsers of untrusted input. Kept out of the main package
// so `swift build` / `swift test` never need the fuzzer runtime. Build and run with
// `make fuzz` (scripts/fuzz.sh): `swift build --package-path Fuzz --sanitize=fuzzer`.
// Each target's main.swift only defines `LLVMFuzzerTestOneInput`; libFuzzer supplies main.
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "clusterd-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "clusterd", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        .executableTarget(
            name: "FuzzClientProtocol",
            dependencies: [
                .product(name: "ClusterServer", package: "clusterd"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: v5
        ),
        .executableTarget(
            name: "FuzzServerConfig",
            dependencies: [
                .product(name: "ServerConfig", package: "clusterd"),
                .product(name: "ClusterServer", package: "clusterd"),
            ],
            swiftSettings: v5
        ),
        .executableTarget(
            name: "FuzzJetStreamJSON",
            dependencies: [.product(name: "ClusterServer", package: "clusterd")],
            swiftSettings: v5
        ),
    ]
)
