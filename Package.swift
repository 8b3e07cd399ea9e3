// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "runbook",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "runbook", targets: ["runbook"]),
    // verify's HTTP probe (URLSession): its own program, so that only it links FoundationNetworking.
    .executable(name: "runbook-health-probe", targets: ["runbook-health-probe"]),
    .library(name: "RunbookKit", targets: ["RunbookKit"]),
  ],
  targets: [
    .target(name: "RunbookKit", path: "Sources/RunbookKit"),
    .executableTarget(name: "runbook", dependencies: ["RunbookKit"], path: "Sources/runbook"),
    .executableTarget(name: "runbook-health-probe", path: "Sources/runbook-health-probe"),
    .testTarget(
      name: "RunbookKitTests", dependencies: ["RunbookKit"], path: "Tests/RunbookKitTests"),
    .testTarget(
      name: "IntegrationTests", dependencies: ["RunbookKit"], path: "Tests/IntegrationTests"),
  ],
  swiftLanguageModes: [.v6]
)
