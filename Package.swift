// swift-tools-version:6.0
import PackageDescription

// The layers are targets, so a wrong arrow does not compile (docs/architecture.md draws the graph;
// `make check-layers` fails when the engine depends on the AWS or runbook targets):
//
//   RunbookProcess   commands as values, the process runner, signals, scratch files   (nothing)
//   RunbookAWS       the aws CLI: global options, error codes and their classes,
//                    caller identity, request ids                                      (Process)
//   RunbookState     checkpoint, journal, local and S3 stores                          (Process, AWS)
//   RunbookEngine    steps and actions as values, scheduling, write-ahead/act/record,
//                    reconcile, retries by class: no service name, no aws verb          (Process, State)
//   UniSyncRunbook   the guide: Steps/ (one file per section), Support/, Configuration/ (all above)
//   RunbookCLI       options, frontend, console                                         (all above)
//   runbook          the thin executable                                                (CLI)
let package = Package(
  name: "runbook",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "runbook", targets: ["runbook"]),
    // verify's HTTP probe (URLSession): its own program, so that only it links FoundationNetworking.
    .executable(name: "runbook-health-probe", targets: ["runbook-health-probe"]),
    .library(name: "RunbookCLI", targets: ["RunbookCLI"]),
  ],
  targets: [
    .target(name: "RunbookProcess"),
    .target(name: "RunbookAWS", dependencies: ["RunbookProcess"]),
    .target(name: "RunbookState", dependencies: ["RunbookProcess", "RunbookAWS"]),
    .target(name: "RunbookEngine", dependencies: ["RunbookProcess", "RunbookState"]),
    .target(
      name: "UniSyncRunbook",
      dependencies: ["RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine"]),
    .target(
      name: "RunbookCLI",
      dependencies: [
        "RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine", "UniSyncRunbook",
      ]),
    .executableTarget(
      name: "runbook", dependencies: ["RunbookCLI", "RunbookProcess"], path: "Sources/runbook"),
    .executableTarget(name: "runbook-health-probe", path: "Sources/runbook-health-probe"),
    .testTarget(
      name: "RunbookKitTests",
      dependencies: [
        "RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine", "UniSyncRunbook",
        "RunbookCLI",
      ],
      path: "Tests/RunbookKitTests"),
    .testTarget(
      name: "IntegrationTests",
      dependencies: [
        "RunbookProcess", "RunbookAWS", "RunbookState", "RunbookEngine", "UniSyncRunbook",
        "RunbookCLI",
      ],
      path: "Tests/IntegrationTests"),
  ],
  swiftLanguageModes: [.v6]
)
