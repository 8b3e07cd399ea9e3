import Foundation
import XCTest

@testable import RunbookKit

/// Reads the engine does not make because their answer is known: what a creation in the same run
/// settles (``Settlement``), and values derived from others (``Action/derived(_:_:export:pattern:value:after:)``).
final class EngineSettlementTests: XCTestCase {
  /// `thing` creates something; `sync` would bring it up to date (its precheck reads it first);
  /// `policy` puts a document on it (its precheck reads whether it has it already).
  func settledStep() -> TestStep {
    var thing = createAction("thing", export: "THING_ID", lookup: true)
    thing.alreadyDoneErrors = ["ThingAlreadyExists"]
    let sync = Action(
      name: "sync", summary: "bring the thing up to date", effect: .write,
      command: .aws("test", "update-thing", "--id", .ref("THING_ID")),
      capture: Capture(export: nil, pattern: "^thing-[0-9]+$"), idempotent: true,
      precheck: Precheck(.aws("test", "describe-thing", "--id", .ref("THING_ID")), rule: "in sync")
      {
        output, _ in output.contains("in-sync") ? "thing-1" : nil
      },
      settledBy: .nothingToDo(whenCreated: "thing"))
    let policy = Action(
      name: "policy", summary: "put the policy", effect: .write,
      command: .aws("test", "put-policy", "--id", .ref("THING_ID")), idempotent: true,
      precheck: Precheck(.aws("test", "get-policy", "--id", .ref("THING_ID")), rule: "has it") {
        output, _ in output.contains("same") ? "policy" : nil
      },
      settledBy: .nothingToFind(whenCreated: "thing"))
    return TestStep("s", [thing, sync, policy])
  }

  func testACreationInTheSameRunSettlesTheReadsAfterIt() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-thing", reply: .ok("thing-1"))
    fixture.runner.on("aws", "test", "put-policy", reply: .ok())
    let step = settledStep()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map {
        $0.argv.dropFirst().prefix(2).joined(separator: " ")
      },
      ["test create-thing", "test put-policy"],
      "neither the update nor either read: the thing was created a moment ago")
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.record("s", "sync")?.status, .done)
    XCTAssertEqual(checkpoint.record("s", "sync")?.outcome, .alreadyDone)
    XCTAssertEqual(checkpoint.record("s", "sync")?.value, "thing-1")
    XCTAssertEqual(checkpoint.record("s", "policy")?.outcome, .created)
  }

  func testAThingThatExistedAlreadyIsReadAsUsual() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-thing",
      reply: .awsError("ThingAlreadyExists", operation: "CreateThing", message: "it exists"))
    fixture.runner.on("aws", "test", "describe-thing", reply: .ok("thing-7"))
    fixture.runner.on("aws", "test", "describe-thing", "--id", reply: .ok("stale"))
    fixture.runner.on("aws", "test", "update-thing", reply: .ok("thing-7"))
    fixture.runner.on("aws", "test", "get-policy", reply: .ok("same"))
    let step = settledStep()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "describe-thing", "--id").count, 1)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "update-thing").count, 1)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "get-policy").count, 1)
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "put-policy").count, 0, "the precheck found the policy")
    XCTAssertEqual(try fixture.checkpoint().record("s", "sync")?.outcome, .created)
  }

  func testAThingCreatedByAnEarlierRunIsReadAsUsual() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-thing", "--id", reply: .ok("in-sync"))
    fixture.runner.on("aws", "test", "get-policy", reply: .ok("other"))
    fixture.runner.on("aws", "test", "put-policy", reply: .ok())
    try fixture.seedCheckpoint {
      $0.actions["s/thing"] = ActionRecord(
        status: .done, outcome: .created, value: "thing-1", export: "THING_ID")
      $0.exports["THING_ID"] = "thing-1"
    }
    let step = settledStep()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map { $0.argv.dropFirst().prefix(2).joined(separator: " ") }
        .sorted(),
      ["test describe-thing", "test get-policy", "test put-policy"])
  }

  func testTheSettlingActionRunsFirstAndPlanSaysWhatItSettles() async throws {
    let step = settledStep()
    let dependencies = StepExecution.dependencies(of: step.list)
    XCTAssertEqual(dependencies["sync"], ["thing"])
    XCTAssertEqual(dependencies["policy"], ["thing"])
    let fixture = try EngineFixture(test: self)
    let plan = try fixture.engine([step]).plan([step], checkpoint: nil)
    let sync = try XCTUnwrap(plan.first?.actions.first { $0.name == "sync" })
    XCTAssertTrue(
      sync.command.contains("not needed when thing creates its resource in the same run"),
      sync.command)
  }

  func testADerivedValueIsExportedWithoutACall() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-queue", reply: .ok("queue-1"))
    let step = TestStep(
      "s",
      [
        createAction("queue", export: "QUEUE_URL"),
        .derived(
          "queue-arn", "the ARN", export: "QUEUE_ARN",
          pattern: "^arn:aws:sqs:[a-z0-9-]+:[0-9]{12}:q$",
          value: SQSStep.queueARN("q"), after: ["queue"]),
      ])
    XCTAssertEqual(StepExecution.dependencies(of: step.list)["queue-arn"], ["queue"])
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map {
        $0.argv.dropFirst().prefix(2).joined(separator: " ")
      },
      ["test create-queue"])
    let exports = try fixture.checkpoint().exports
    let account = try XCTUnwrap(try fixture.checkpoint().account)
    XCTAssertEqual(exports["QUEUE_ARN"], "arn:aws:sqs:\(fixture.deployment.region):\(account):q")

    let plan = try fixture.engine([step]).plan([step], checkpoint: nil)
    XCTAssertEqual(
      plan.first?.actions.last?.command, "QUEUE_ARN = arn:aws:sqs:ap-northeast-2:<ACCOUNT_ID>:q")
  }
}
