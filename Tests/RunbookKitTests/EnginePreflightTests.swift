import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

/// What the engine refuses before it changes anything: another account, region or deployment,
/// and steps whose prerequisites have not run.
final class EnginePreflightTests: XCTestCase {
  let step = TestStep("s", [createAction("a", export: "A_ID")])

  func testAccountMismatchIsRefusedAndLeavesTheStateAlone() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(account: "111111111111")
    let before = try XCTUnwrap(contents(of: fixture.state.stateFile))
    fixture.runner.answerCallerIdentity("222222222222")
    let error = await assertThrows(CheckpointError.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(
      error,
      .foreignAccount(
        file: fixture.state.stateFile, checkpoint: "111111111111", credentials: "222222222222"))
    XCTAssertEqual(fixture.runner.callsAfterIdentity, [])
    XCTAssertEqual(contents(of: fixture.state.stateFile), before)
    XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.state.journalFile))
  }

  func testADockerDaemonThatDoesNotAnswerIsRefusedBeforeAnyWrite() async throws {
    let fixture = try EngineFixture(test: self)
    let images = TestStep(
      "images",
      [
        createAction("repo", export: "REPO"),
        Action(
          name: "push", summary: "push", effect: .write, command: .docker("push", "r/x:1"),
          after: ["repo"]),
      ])
    fixture.runner.on("aws", "sts", "get-caller-identity", reply: .ok("123456789012"))
    fixture.runner.on(
      "docker", "version",
      reply: .failure(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        status: 1))
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([images]).run([images])
    }
    let message = error?.message ?? "no usage error"
    XCTAssertTrue(message.hasPrefix("the Docker daemon does not answer (Cannot connect"), message)
    XCTAssertTrue(message.contains("images"), message)
    XCTAssertEqual(fixture.runner.calls("aws", "test"), [], "nothing was created")
    XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.state.journalFile))

    // Once the images are pushed, a run with nothing left for docker does not ask it.
    let other = TestStep("other", [createAction("a", export: "A_ID")])
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    _ = try await fixture.engine([other]).run([other])
    XCTAssertEqual(fixture.runner.calls("docker", "version").count, 1)
  }

  func testRegionMismatchIsRefusedBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(region: "us-east-1")
    let before = try XCTUnwrap(contents(of: fixture.state.stateFile))
    let error = await assertThrows(CheckpointError.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(
      error,
      .foreignRegion(
        file: fixture.state.stateFile, checkpoint: "us-east-1", configuration: "ap-northeast-2"))
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertEqual(contents(of: fixture.state.stateFile), before)
  }

  func testRegionOverrideMatchingTheCheckpointIsAccepted() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint(region: "us-east-1")
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    _ = try await fixture.engine([step], region: "us-east-1").run([step])
    XCTAssertEqual(
      fixture.runner.calls("aws", "test").first?.value(of: "--region"), "us-east-1")
  }

  func testDeploymentMismatchIsRefusedBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint { $0.deployment = "staging" }
    let error = await assertThrows(CheckpointError.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(
      error,
      .foreignDeployment(
        file: fixture.state.stateFile, checkpoint: "staging", configuration: "unisync"))
    XCTAssertEqual(fixture.runner.calls, [])
  }

  func testMissingPrerequisiteNamesTheStepThatProducesIt() async throws {
    let fixture = try EngineFixture(test: self)
    let producer = TestStep("p", [createAction("x", export: "X_ID")])
    let consumer = TestStep(
      "q",
      [createAction("y", export: "Y_ID", arguments: [.ref("X_ID"), .ref(ContextValue.account)])])
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([consumer], catalogue: [producer, consumer]).run([consumer])
    }
    XCTAssertEqual(
      error?.message,
      "step 'q' needs X_ID, which the checkpoint does not have: run 'runbook run p' first")
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertNil(try fixture.state.load())
  }

  func testExportNobodyProducesIsReported() async throws {
    let fixture = try EngineFixture(test: self)
    let orphan = TestStep("q", [createAction("y", export: "Y_ID", arguments: [.ref("NOPE")])])
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([orphan]).run([orphan])
    }
    XCTAssertEqual(
      error?.message,
      "step 'q' needs NOPE, which the checkpoint does not have: no step produces them")
  }

  func testPrerequisiteProducedEarlierInTheSameRunIsFine() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-x", reply: .ok("x-1"))
    fixture.runner.on("aws", "test", "create-y", reply: .ok("y-1"))
    let producer = TestStep("p", [createAction("x", export: "X_ID")])
    let consumer = TestStep("q", [createAction("y", export: "Y_ID", arguments: [.ref("X_ID")])])
    _ = try await fixture.engine([producer, consumer]).run([producer, consumer])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-y").first?.argv[3], "x-1")
  }

  func testMissingToolIsRefusedBeforeAnyCall() async throws {
    let fixture = try EngineFixture(test: self)
    let empty = fixture.folder.appendingPathComponent("empty-bin").path
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    let error = await assertThrows(UsageError.self) {
      try await fixture.engine([step], environment: ["PATH": empty]).run([step])
    }
    XCTAssertTrue(
      error?.message.hasPrefix("cannot find 'aws' on PATH") ?? false, "\(String(describing: error))"
    )
    XCTAssertEqual(fixture.runner.calls, [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.state.path))
  }

  func testPlanStartsNoProcessAndShowsPlaceholders() async throws {
    let fixture = try EngineFixture(test: self)
    let consumer = TestStep("q", [createAction("y", export: "Y_ID", arguments: [.ref("X_ID")])])
    let planned = try await fixture.engine([consumer]).plan([consumer])
    XCTAssertEqual(
      planned.first?.actions.first?.command, "aws test create-y <X_ID> --region ap-northeast-2")
    XCTAssertEqual(planned.first?.actions.first?.kind, "write")
    XCTAssertEqual(fixture.runner.calls, [])
  }
}
