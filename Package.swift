// swift-tools-version:6.0
import PackageDescription

// Language mode 5 keeps the NIO handlers free of Sendable ceremony; the pure modules
// (Raft, Gossip, StreamLog) are value types and thread-confined by design.
let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
// The message path: exclusivity is checked statically; the dynamic checks cost ~10% of a
// publish in profiles, so the server module turns them off in release builds.
let serverSettings: [SwiftSetting] = v5 + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "clusterd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "clusterd", targets: ["clusterd"]),
        .executable(name: "clusterctl", targets: ["clusterctl"]),
        .library(name: "NATSClient", targets: ["NATSClient"]),
        // For the libFuzzer package under Fuzz/ (it links these, instrumented).
        .library(name: "ClusterServer", targets: ["ClusterServer"]),
        .library(name: "ServerConfig", targets: ["ServerConfig"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Hardware CRC32C (SSE4.2 on x86-64, chosen at run time); StreamLog keeps a software path.
        .target(name: "CCRC32C"),
        .target(name: "StreamLog", dependencies: ["CLZ4", "CCRC32C"], swiftSettings: v5),
        .target(name: "Raft", swiftSettings: v5),
        // The durable RaftStorage: Raft entries in a StreamLog, hard state and snapshot in files.
        .target(name: "RaftLogStorage", dependencies: ["Raft", "StreamLog"], swiftSettings: v5),
        .target(name: "Gossip", swiftSettings: v5),
        // The nats-server configuration format: a pure parser (file reads are injected).
        .target(name: "ServerConfig", swiftSettings: v5),
        .target(
            name: "ClusterServer",
            dependencies: [
                "StreamLog", "Raft", "RaftLogStorage", "Gossip", "ServerConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: serverSettings
        ),
        .target(
            name: "NATSClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: v5
        ),
        .executableTarget(
            name: "clusterd",
            dependencies: [
                "ClusterServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: v5
        ),
        .executableTarget(
            name: "clusterctl",
            dependencies: [
                "NATSClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: v5
        ),
        .executableTarget(name: "RaftBench", dependencies: ["Raft"], swiftSettings: v5),
        .executableTarget(name: "StreamLogBench", dependencies: ["StreamLog"], swiftSettings: v5),
        .executableTarget(name: "RaftStorageBench", dependencies: ["Raft", "RaftLogStorage", "StreamLog"], swiftSettings: v5),
        // The simulator also runs nodes on the durable storage (RaftLogStorage over FaultyFileSystem).
        .testTarget(name: "RaftTests", dependencies: ["Raft", "RaftLogStorage", "StreamLog"], swiftSettings: v5),
        .testTarget(name: "RaftLogStorageTests", dependencies: ["RaftLogStorage", "Raft", "StreamLog"], swiftSettings: v5),
        .testTarget(name: "StreamLogTests", dependencies: ["StreamLog"], swiftSettings: v5),
        .testTarget(name: "GossipTests", dependencies: ["Gossip"], swiftSettings: v5),
        .testTarget(name: "ServerConfigTests", dependencies: ["ServerConfig"], swiftSettings: v5),
        .testTarget(name: "NATSClientTests", dependencies: ["NATSClient"], swiftSettings: v5),
        .testTarget(
            name: "ClusterServerTests",
            dependencies: ["ClusterServer", "NATSClient", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: v5
        ),
        .testTarget(name: "ChaosTests", dependencies: ["NATSClient"], swiftSettings: v5),
    ]
)
