import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The run history the engine writes: a started and a finished record per run, what it changed,
/// the outcome and exit status, the masked command line and the image tag; and the history file.
final class RunHistoryTests: XCTestCase {
  func engine(
    _ fixture: EngineFixture, _ steps: [any GuideStep], commandLine: String,
    imageTag: String? = nil, secrets: SecretStore = SecretStore()
  ) -> Engine<Deployment> {
    Engine(
      deployment: fixture.deployment, state: fixture.state, catalogue: steps,
      runner: fixture.runner, reporter: fixture.reporter, prompter: nil,
      aws: AWSSettings(region: fixture.deployment.region), secrets: secrets,
      options: RunOptions(
        assumeYes: true, jobs: 1, commandLine: commandLine, retry: EngineFixture.fastRetry,
        imageTag: imageTag),
      environment: ["PATH": stubToolPath])
  }

  func testARunThatSucceedsRecordsItsStartItsEndAndWhatItCreated() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = fixture.twoActionStep()
    let secrets = SecretStore()
    secrets.set("TOKEN", "s3cr3t-value")
    _ = try await engine(
      fixture, [step], commandLine: "runbook run update --tag v7 --note s3cr3t-value",
      imageTag: "v7", secrets: secrets
    ).run([step])
    let records = try HistoryFile(path: fixture.state.historyFile).records()
    XCTAssertEqual(records.map(\.event), [.started, .finished])
    let (started, finished) = (records[0], records[1])
    XCTAssertEqual(started.run, finished.run)
    XCTAssertEqual(started.startedAt, finished.startedAt)
    XCTAssertEqual(finished.lineage, try fixture.checkpoint().lineage)
    XCTAssertEqual(finished.outcome, .succeeded)
    XCTAssertEqual(finished.exitStatus, 0)
    XCTAssertEqual(finished.imageTag, "v7")
    XCTAssertEqual(finished.steps, ["s"])
    XCTAssertFalse(finished.command.contains("s3cr3t-value"), finished.command)
    XCTAssertTrue(finished.command.hasPrefix("runbook run update --tag v7 --note "))
    XCTAssertEqual(
      finished.changes,
      [
        RunRecord.Change(action: "s/a", outcome: "created", value: "a-1"),
        RunRecord.Change(action: "s/b", outcome: "created", value: "b-1"),
      ])
    XCTAssertNotNil(finished.endedAt)
    XCTAssertEqual(
      finished.log.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path },
      fixture.state.logsDirectory)

    // Nothing to do: no lock, no record.
    _ = try await engine(fixture, [step], commandLine: "runbook run").run([step])
    XCTAssertEqual(try HistoryFile(path: fixture.state.historyFile).records().count, 2)
  }

  func testAFailedRunRecordsItsFailureWithWhatItDidBefore() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    fixture.runner.on(
      "aws", "test", "create-b",
      reply: .failure("An error occurred (InvalidParameterValue) when calling create-b: no"))
    let step = TestStep(
      "s", [createAction("a", export: "A_ID"), createAction("b", export: "B_ID", after: ["a"])])
    do {
      _ = try await engine(fixture, [step], commandLine: "runbook run s").run([step])
      XCTFail("the run should have failed")
    } catch is StepFailure {}
    let finished = try XCTUnwrap(HistoryFile(path: fixture.state.historyFile).records().last)
    XCTAssertEqual(finished.event, .finished)
    XCTAssertEqual(finished.outcome, .failed)
    XCTAssertEqual(finished.exitStatus, 1)
    XCTAssertEqual(finished.failure, "step 's' failed at action 'b'")
    XCTAssertEqual(
      finished.changes, [RunRecord.Change(action: "s/a", outcome: "created", value: "a-1")])
  }

  func testExitStatusesAreTheCLIs() {
    XCTAssertEqual(RunRecord.exitStatus(of: .succeeded), ExitStatus.success)
    XCTAssertEqual(RunRecord.exitStatus(of: .failed), ExitStatus.stepFailed)
    XCTAssertEqual(RunRecord.exitStatus(of: .error), ExitStatus.usage)
    XCTAssertEqual(RunRecord.exitStatus(of: .conflict), ExitStatus.locked)
    XCTAssertEqual(RunRecord.exitStatus(of: .interrupted), ExitStatus.interrupted)
  }

  /// A teardown that finished forgot its step: what the step had created is reported deleted,
  /// what it only read or adopted is not.
  func testChangesOfATeardownNameWhatItDeleted() {
    var before = Checkpoint(deployment: "d", region: "r")
    before.actions["n/vpc"] = ActionRecord(
      status: .done, outcome: .created, value: "vpc-1", export: "VPC_ID")
    before.actions["n/read"] = ActionRecord(status: .done, outcome: .read, value: "x", export: nil)
    before.actions["n/adopted"] = ActionRecord(
      status: .done, outcome: .adopted, value: "sg-1", export: nil)
    let after = Checkpoint(deployment: "d", region: "r", lineage: before.lineage)
    XCTAssertEqual(
      Engine<Deployment>.changes(from: before, to: after),
      [RunRecord.Change(action: "n/vpc", outcome: "deleted", value: "vpc-1")])
  }

  /// A killed append leaves a torn line: the next record still gets a line of its own, and
  /// reading skips the torn one.
  func testATornLineIsSkippedAndTheNextRecordStaysWhole() throws {
    let folder = try makeScratchFolder()
    let file = HistoryFile(path: folder.appendingPathComponent("history.jsonl").path)
    let first = RunRecord(
      lineage: "l", command: "runbook run", steps: ["s"], log: nil, imageTag: nil)
    try file.append(first)
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file.path))
    handle.seekToEndOfFile()
    handle.write(Data(#"{"event":"started","run":"#.utf8))
    try handle.close()
    let last = first.finished(outcome: .interrupted, changes: [], failure: "Ctrl-C")
    try file.append(last)
    XCTAssertEqual(try file.records(), [first, last])
  }
}
