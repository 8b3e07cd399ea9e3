import Foundation
import RunbookProcess
import RunbookAWS
import RunbookState
import RunbookEngine
import UniSyncRunbook
import RunbookCLI
import XCTest

/// Bad input stops the tool before it runs anything: exit 2 (3 for a held lock), one line naming the
/// file and field, no aws call, and every state file byte-for-byte as it was.
final class BadInputTests: XCTestCase {

  /// Runs the tool and checks the contract for bad input.
  func assertRejected(
    _ workspace: Workspace, _ arguments: [String], status: Int32 = 2, mentions: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) async throws {
    let before = workspace.stateSnapshot().filter { !$0.key.hasPrefix("logs/") }
    let log = workspace.directory.appendingPathComponent("aws-\(UUID().uuidString).log").path
    let run = try await workspace.run(arguments, environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(run.status, status, run.summary, file: file, line: line)
    XCTAssertFalse(run.signaled, file: file, line: line)
    let lines = run.stderr.split(separator: "\n")
    XCTAssertEqual(
      lines.count, 1, "expected one line of reason, got: \(run.stderr)", file: file, line: line)
    for word in mentions {
      XCTAssertTrue(
        run.stderr.contains(word), "'\(word)' missing from: \(run.stderr)", file: file, line: line)
    }
    let after = workspace.stateSnapshot().filter { !$0.key.hasPrefix("logs/") }
    XCTAssertEqual(
      Set(after.keys), Set(before.keys), "state files appeared or vanished", file: file, line: line)
    for (name, data) in before {
      XCTAssertEqual(after[name], data, "\(name) changed", file: file, line: line)
    }
    let calls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let writes = calls.split(separator: "\n").filter {
      $0.contains(#""write": true"#) || $0.contains(#""write":true"#)
    }
    XCTAssertTrue(
      writes.isEmpty, "bad input reached aws with a write: \(writes)", file: file, line: line)
  }

  func testTruncatedCheckpointAtSeveralOffsets() async throws {
    let workspace = try seededWorkspace()
    let original = try XCTUnwrap(workspace.stateBytes)
    for offset in [0, 1, original.count / 3, original.count / 2, original.count - 3] {
      try original.prefix(offset).write(
        to: URL(fileURLWithPath: workspace.stateDirectory + "/state.json"))
      try await assertRejected(
        workspace, ["run", "--yes"], mentions: ["state.json", "not a usable checkpoint"])
      try await assertRejected(workspace, ["status"], mentions: ["state.json"])
    }
  }

  func testUnknownFormatVersion() async throws {
    let workspace = try seededWorkspace()
    let path = workspace.stateDirectory + "/state.json"
    let text = try String(contentsOfFile: path, encoding: .utf8)
      .replacingOccurrences(of: "\"formatVersion\" : 1", with: "\"formatVersion\" : 99")
    try text.write(toFile: path, atomically: false, encoding: .utf8)
    try await assertRejected(
      workspace, ["run", "--yes"], mentions: ["state.json", "format version 99"])
  }

  func testCheckpointOfAnotherRegion() async throws {
    let workspace = try seededWorkspace()
    try await assertRejected(
      workspace, ["--region", "us-east-1", "run", "--yes"],
      mentions: ["state.json", "ap-northeast-2", "us-east-1"])
  }

  func testCheckpointOfAnotherAccount() async throws {
    try Emulator.reset()
    let workspace = try seededWorkspace()
    let state = StateDirectory(path: workspace.stateDirectory)
    var checkpoint = try XCTUnwrap(try state.load())
    checkpoint.account = "999999999999"
    try state.save(checkpoint)
    try await assertRejected(
      workspace, ["run", "network", "--yes"],
      mentions: ["state.json", "999999999999", "123456789012"])
  }

  func testCheckpointOfAnotherDeployment() async throws {
    let workspace = try seededWorkspace { $0["deployment"] = "unisync-staging" }
    try await assertRejected(
      workspace, ["run", "--yes"], mentions: ["state.json", "unisync-staging"])
  }

  func testUnknownStep() async throws {
    let workspace = try seededWorkspace()
    try await assertRejected(workspace, ["run", "networking", "--yes"], mentions: ["networking"])
    try await assertRejected(workspace, ["plan", "vpc"], mentions: ["vpc"])
  }

  func testUnknownConfigurationKey() async throws {
    let workspace = try seededWorkspace { config in
      var network = config["network"] as! [String: Any]
      network["natGateways"] = 2
      config["network"] = network
    }
    try await assertRejected(
      workspace, ["run", "--yes"],
      mentions: ["config.json", "network.natGateways", "not a known setting"])
  }

  func testInvalidCIDR() async throws {
    let workspace = try seededWorkspace { config in
      var network = config["network"] as! [String: Any]
      var vpc = network["vpc"] as! [String: Any]
      vpc["cidr"] = "10.0.0.0/33"
      network["vpc"] = vpc
      config["network"] = network
    }
    try await assertRejected(
      workspace, ["run", "--yes"], mentions: ["config.json", "network.vpc.cidr", "10.0.0.0/33"])
  }

  func testPortOutOfRange() async throws {
    let workspace = try seededWorkspace { config in
      var services = config["services"] as! [[String: Any]]
      services[1]["port"] = 70000
      config["services"] = services
    }
    try await assertRejected(
      workspace, ["plan"], mentions: ["config.json", "services[1].port", "70000"])
  }

  func testRunWithoutTerminalOrYesRefuses() async throws {
    let workspace = try seededWorkspace()
    try await assertRejected(workspace, ["run"], mentions: ["--yes"])
  }

  func testSecondRunExitsThreeAtOnceNamingTheHolder() async throws {
    let workspace = try seededWorkspace()
    let holder = try StateDirectory(path: workspace.stateDirectory).lock(
      command: "runbook run (test holder)")
    defer { holder.release() }
    let started = Date()
    try await assertRejected(
      workspace, ["run", "--yes"], status: 3, mentions: ["lock", "pid \(getpid())"])
    XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the second run should give up at once")
  }
}
