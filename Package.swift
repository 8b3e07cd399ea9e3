// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "runbook",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "runbook", targets: ["runbook"]),
    .library(name: "RunbookKit", targets: ["RunbookKit"]),
  ],
  targets: [
    .target(name: "RunbookKit", path: "Sources/RunbookKit"),
    .executableTarget(name: "runbook", dependencies: ["RunbookKit"], path: "Sources/runbook"),
    .testTarget(
      name: "RunbookKitTests", dependencies: ["RunbookKit"], path: "Tests/RunbookKitTests"),
    .testTarget(
      name: "IntegrationTests", dependencies: ["RunbookKit"], path: "Tests/IntegrationTests"),
  ],
  swiftLanguageModes: [.v6]
)
