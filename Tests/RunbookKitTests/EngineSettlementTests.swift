import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

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

  /// `families` lists the names that exist; `register-a` and `register-b` each read theirs first.
  func listedStep() -> TestStep {
    let listing = Action(
      name: "families", summary: "list the families", effect: .read,
      command: .aws("test", "list-families", "--prefix", "app-"))
    let registers = ["app-a", "app-b"].map { name in
      Action(
        name: "register-\(name)", summary: "register \(name)", effect: .write,
        command: .aws("test", "register", "--family", .text(name)),
        capture: Capture(export: nil, pattern: "^rev-[0-9]+$"),
        precheck: Precheck(.aws("test", "describe-family", "--family", .text(name)), rule: "same") {
          output, _ in output.contains("same") ? "rev-1" : nil
        },
        settledBy: .nothingToFind(unlessListedBy: "families", name: name))
    }
    return TestStep("s", [listing] + registers)
  }

  func testAListingInTheSameRunSparesThePrecheckOfWhatItLeavesOut() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    // app-b exists (and matches); app-a does not, nor does a longer name that contains it.
    fixture.runner.on("aws", "test", "list-families", reply: .ok("app-b\tapp-a-old"))
    fixture.runner.on("aws", "test", "describe-family", "--family", "app-b", reply: .ok("same"))
    fixture.runner.on("aws", "test", "register", reply: .ok("rev-2"))
    let step = listedStep()
    XCTAssertEqual(StepExecution.dependencies(of: step.list)["register-app-a"], ["families"])
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "list-families").count, 1)
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "describe-family", "--family", "app-a").count, 0)
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "describe-family", "--family", "app-b").count, 1)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "register", "--family", "app-a").count, 1)
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "register", "--family", "app-b").count, 0,
      "listed, and its precheck found it the same")
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.record("s", "register-app-a")?.outcome, .created)
    XCTAssertEqual(checkpoint.record("s", "register-app-b")?.outcome, .alreadyDone)
  }

  func testAListingOfAnEarlierRunSparesNothing() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-family", reply: .ok("same"))
    try fixture.seedCheckpoint {
      $0.actions["s/families"] = ActionRecord(
        status: .done, outcome: .read, value: nil, export: nil)
    }
    let step = listedStep()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "list-families").count, 0)
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "describe-family").count, 2,
      "what an earlier run listed may have changed since: each precheck reads")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "register").count, 0)
  }

  /// A wait whose poll asks for more than the state (`[State,Address]`), and reads of the same
  /// command after it: the last poll answers them.
  func testTheLastPollOfAWaitAnswersTheReadsOfTheSameCommand() async throws {
    let describe = Command.aws("test", "describe-db", "--query", "[State,Address,Secret]")
    let step = TestStep(
      "s",
      [
        .waitUntil(
          "available", "wait", command: describe, success: ["available"], timeoutSeconds: 60,
          intervalSeconds: 0.01),
        Action(
          name: "address", summary: "read the address", effect: .read, command: describe,
          capture: Capture(
            export: "DB_ADDRESS", pattern: "^db[.]example$", extract: #"^\S+\s+(\S+)"#),
          after: ["available"]),
        Action(
          name: "secret", summary: "read the secret", effect: .read, command: describe,
          capture: Capture(
            export: "DB_SECRET", pattern: "^arn:s$", extract: #"^\S+\s+\S+\s+(\S+)"#),
          after: ["available", "address"]),
      ])
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-db", reply: .ok("available\tdb.example\tarn:s"))
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "describe-db").count, 1)
    var exports = try fixture.checkpoint().exports
    XCTAssertEqual(exports["DB_ADDRESS"], "db.example")
    XCTAssertEqual(exports["DB_SECRET"], "arn:s")

    // A later run, the wait done already: the first read asks, and its answer serves the second.
    let again = try EngineFixture(test: self)
    again.runner.answerCallerIdentity()
    again.runner.on("aws", "test", "describe-db", reply: .ok("available\tdb.example\tarn:s"))
    try again.seedCheckpoint {
      $0.actions["s/available"] = ActionRecord(
        status: .done, outcome: .read, value: nil, export: nil)
    }
    _ = try await again.engine([step]).run([step])
    XCTAssertEqual(again.runner.calls("aws", "test", "describe-db").count, 1)
    exports = try again.checkpoint().exports
    XCTAssertEqual(exports["DB_ADDRESS"], "db.example")
  }

  /// `net` creates the VPC; `s` creates a group in it, after looking for one there.
  func vpcSteps() -> [TestStep] {
    let group = Action(
      name: "group", summary: "create the group", effect: .write,
      command: .aws("test", "create-group", "--vpc", .ref("VPC_ID")),
      capture: Capture(export: nil, pattern: "^group-[0-9]+$"),
      precheck: .exists(
        .aws("test", "describe-groups", "--vpc", .ref("VPC_ID")), rule: "it exists",
        pattern: "^group-[0-9]+$"),
      settledBy: .nothingToFind(whenCreated: "vpc", inStep: "net"))
    return [TestStep("net", [createAction("vpc", export: "VPC_ID")]), TestStep("s", [group])]
  }

  func testAVPCCreatedInThisRunSparesTheLookInItOfALaterStep() async throws {
    let steps = vpcSteps()
    XCTAssertEqual(StepExecution.dependencies(of: steps[1].list)["group"], [])
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-vpc", reply: .ok("vpc-1"))
    fixture.runner.on("aws", "test", "create-group", reply: .ok("group-1"))
    _ = try await fixture.engine(steps).run(steps)
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map {
        $0.argv.dropFirst().prefix(2).joined(separator: " ")
      },
      ["test create-vpc", "test create-group"])

    // The VPC made by an earlier run: the group is looked for, found, and not created again.
    let again = try EngineFixture(test: self)
    again.runner.answerCallerIdentity()
    again.runner.on("aws", "test", "describe-groups", reply: .ok("group-4"))
    try again.seedCheckpoint {
      $0.actions["net/vpc"] = ActionRecord(
        status: .done, outcome: .created, value: "vpc-1", export: "VPC_ID")
      $0.exports["VPC_ID"] = "vpc-1"
    }
    _ = try await again.engine(steps).run(steps)
    XCTAssertEqual(again.runner.calls("aws", "test", "describe-groups").count, 1)
    XCTAssertEqual(again.runner.calls("aws", "test", "create-group").count, 0)
    XCTAssertEqual(try again.checkpoint().record("s", "group")?.outcome, .alreadyDone)
  }
}
