import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Bad input stops the tool before it runs anything: exit 2 (3 for a held lock), one line naming the
/// file and field, no aws call, and every state file byte-for-byte as it was.
final class BadInputTests: XCTestCase {

  /// Runs the tool and checks the contract for bad input.
  /// With `noCall`, not even a read may reach aws.
  func assertRejected(
    _ workspace: Workspace, _ arguments: [String], status: Int32 = 2, mentions: [String],
    noCall: Bool = false, file: StaticString = #filePath, line: UInt = #line
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
    if noCall {
      XCTAssertEqual(calls, "", "bad input reached aws", file: file, line: line)
    }
  }

  /// Appends raw bytes to the journal.
  func appendToJournal(_ workspace: Workspace, _ text: String) throws {
    let handle = try XCTUnwrap(
      FileHandle(forWritingAtPath: workspace.stateDirectory + "/journal.jsonl"))
    handle.seekToEndOfFile()
    handle.write(Data(text.utf8))
    try handle.close()
  }

  /// A journal line in the middle that is not an entry (damaged, not torn by a kill: lines
  /// follow it) stops `run` and `destroy` before any aws call, naming the file and the line.
  func testAJournalLineDamagedInTheMiddleStopsTheRunBeforeAnyCall() async throws {
    let workspace = try seededWorkspace()
    let lineage = try workspace.checkpoint().lineage
    try appendToJournal(workspace, #"{"action":"network/subnet-public-2c","at":"2026-11-"# + "\n")
    try Journal(path: workspace.stateDirectory + "/journal.jsonl").append(
      JournalEntry(lineage: lineage, event: .intent, action: "network/igw"))
    let file = workspace.stateDirectory + "/journal.jsonl"
    for arguments in [
      ["run", "--yes"], ["run", "network", "--yes"], ["run", "sqs", "--yes"],
      ["destroy", "network", "--yes", "--force"],
    ] {
      try await assertRejected(
        workspace, arguments,
        mentions: ["\(file): line 2 is not a journal entry", "nothing was run"], noCall: true)
    }
  }

  /// A torn last line (a kill in the middle of an append) is not bad input: the run goes on,
  /// and its first append cuts the torn line off.
  func testATornLastJournalLineIsIgnoredAndCutOff() async throws {
    try Emulator.reset()
    let workspace = try seededWorkspace()
    let torn = #"{"action":"sqs/queue-task-creation-queue","at":"2026-11-27T07:"#
    try appendToJournal(workspace, torn)
    let run = try await workspace.run(["run", "sqs", "--yes"])
    XCTAssertEqual(run.status, 0, run.summary)
    let text = try String(
      contentsOfFile: workspace.stateDirectory + "/journal.jsonl", encoding: .utf8)
    XCTAssertFalse(text.contains(torn), text)
    XCTAssertTrue(text.hasSuffix("\n"))
    let journal = Journal(path: workspace.stateDirectory + "/journal.jsonl")
    XCTAssertEqual(
      try journal.entries().count, text.split(separator: "\n").count, "every line is an entry")
  }

  /// `--state-dir` naming a file: exit 2 naming it, before any aws call.
  func testStateDirectoryThatIsAFileIsRefusedBeforeAnyCall() async throws {
    let workspace = try Workspace()
    try Data("not a folder".utf8).write(to: URL(fileURLWithPath: workspace.stateDirectory))
    try await assertRejected(
      workspace, ["run", "network", "--yes"],
      mentions: ["\(workspace.stateDirectory): cannot write the checkpoint (a file, not a folder)"],
      noCall: true)
    XCTAssertEqual(
      FileManager.default.contents(atPath: workspace.stateDirectory), Data("not a folder".utf8))
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
    // The lock is held until the run has returned: a run that waited for it would never return,
    // so it is let go after two minutes (only a failing test gets there), and the test says so.
    let gaveUp = DispatchSemaphore(value: 0)
    let waited = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
      if gaveUp.wait(timeout: .now() + 120) == .timedOut { waited.signal() }
      holder.release()
    }
    try await assertRejected(
      workspace, ["run", "--yes"], status: 3, mentions: ["lock", "pid \(getpid())"])
    gaveUp.signal()
    XCTAssertEqual(waited.wait(timeout: .now()), .timedOut, "the second run waited for the lock")
  }
}
