import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

/// `runbook destroy` in the process, with a scripted runner: what it asks, what it refuses, and
/// that typing the deployment name is what lets it delete.
final class DestroyCommandTests: XCTestCase {
  typealias Session = FrontendTests.Session

  static let queue = "llm-analysis-queue"
  static let queueURL = "http://127.0.0.1:4566/123456789012/llm-analysis-queue"

  /// A checkpoint in which the sqs step created one queue and found another one existing.
  func seed(_ session: Session, network: Bool = false) throws {
    try session.state.prepare()
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    checkpoint.exports = [
      "QUEUE_URL_LLM_ANALYSIS_QUEUE": Self.queueURL,
      "QUEUE_URL_TASK_CREATION_QUEUE": "http://127.0.0.1:4566/123456789012/task-creation-queue",
    ]
    checkpoint.actions = [
      "sqs/queue-\(Self.queue)": ActionRecord(
        status: .done, outcome: .created, value: Self.queueURL,
        export: "QUEUE_URL_LLM_ANALYSIS_QUEUE"),
      "sqs/queue-task-creation-queue": ActionRecord(
        status: .done, outcome: .alreadyDone, value: nil, export: "QUEUE_URL_TASK_CREATION_QUEUE"),
    ]
    if network {
      checkpoint.exports["VPC_ID"] = "vpc-1"
      checkpoint.exports["ALB_SG"] = "sg-1"
      checkpoint.actions["network/vpc"] = ActionRecord(
        status: .done, outcome: .created, value: "vpc-1", export: "VPC_ID")
      checkpoint.actions["security/alb-sg"] = ActionRecord(
        status: .done, outcome: .created, value: "sg-1", export: "ALB_SG")
    }
    try session.state.save(checkpoint)
  }

  func testYesAloneOrNoTerminalIsRefusedBeforeAnything() async throws {
    let session = try Session(test: self)
    try seed(session)
    let before = try session.state.load()
    var status = await session.run("destroy", "--yes")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(
      session.errors.text.contains(
        "'destroy --yes' deletes without asking only together with --force"))
    status = await session.run("destroy")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(
      session.errors.text.contains(
        "'destroy' needs the deployment name typed in a terminal, or --yes --force"))
    XCTAssertEqual(session.runner.calls, [])
    XCTAssertEqual(try session.state.load(), before)
  }

  func testAStepThatOthersStillUseCannotGoAlone() async throws {
    let session = try Session(test: self)
    try seed(session, network: true)
    let status = await session.run("destroy", "network", "--yes", "--force")
    XCTAssertEqual(status, ExitStatus.usage)
    XCTAssertTrue(
      session.errors.text.contains(
        "step 'security' uses what 'network' created: destroy 'security' first, or both together"),
      session.errors.text)
    XCTAssertEqual(session.runner.calls, [])
  }

  func testAWrongNameDeletesNothing() async throws {
    let session = try Session(test: self, terminal: true, answers: ["unisink"])
    try seed(session)
    let status = await session.run("destroy", "sqs")
    XCTAssertEqual(status, ExitStatus.interrupted)
    XCTAssertEqual(session.runner.calls, [])
    let shown = session.output.text
    XCTAssertTrue(
      shown.contains("  - delete-queue-llm-analysis-queue: delete queue llm-analysis-queue\n"),
      shown)
    XCTAssertTrue(
      shown.contains(
        "  = delete-queue-task-creation-queue: delete queue task-creation-queue (kept: it existed already"
      ), shown)
    XCTAssertTrue(
      shown.contains(
        "  = delete-queue-submission-events-queue: delete queue submission-events-queue (kept: never created"
      ), shown)
    XCTAssertTrue(shown.contains("Type the deployment name (unisync) to go on: "), shown)
    XCTAssertTrue(
      session.errors.text.contains("the deployment name was not typed; nothing was deleted"),
      session.errors.text)
  }

  func testTheTypedNameDeletesWhatWasCreatedAndOnlyThat() async throws {
    let session = try Session(test: self, terminal: true, answers: ["unisync"])
    try seed(session)
    session.runner.answerCallerIdentity()
    session.runner.on("aws", "sqs", "list-queue-tags", reply: .ok("unisync"))
    session.runner.on("aws", "sqs", "delete-queue", reply: .ok())
    let status = await session.run("destroy", "sqs")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    XCTAssertEqual(
      session.runner.callsAfterIdentity.map { Array($0.argv.prefix(5)) },
      [
        ["aws", "sqs", "list-queue-tags", "--queue-url", Self.queueURL],
        ["aws", "sqs", "delete-queue", "--queue-url", Self.queueURL],
      ])
    let checkpoint = try XCTUnwrap(try session.state.load())
    XCTAssertFalse(
      checkpoint.actions.keys.contains { $0.hasPrefix("sqs/") }, "the step is forgotten")
    XCTAssertNil(checkpoint.exports["QUEUE_URL_LLM_ANALYSIS_QUEUE"])
  }

  func testAQueueTaggedForAnotherDeploymentIsKept() async throws {
    let session = try Session(test: self)
    try seed(session)
    session.runner.answerCallerIdentity()
    session.runner.on("aws", "sqs", "list-queue-tags", reply: .ok("other-deployment"))
    let status = await session.run("destroy", "sqs", "--yes", "--force")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    XCTAssertTrue(session.runner.calls("aws", "sqs", "delete-queue").isEmpty)
    XCTAssertTrue(
      session.output.text.contains("kept: not tagged runbook:deployment=unisync"),
      session.output.text)
  }
}
