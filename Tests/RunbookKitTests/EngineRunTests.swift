import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The engine with a scripted runner: order, exports, resuming, AWS errors, retries and failures.
final class EngineRunTests: XCTestCase {
  let identity = ["aws", "sts", "get-caller-identity"]
  let region = ["--region", "ap-northeast-2"]

  // MARK: - Order and exports

  func testActionsRunInDependencyOrderAndExportsFlow() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    fixture.runner.on("aws", "test", "create-b", reply: .ok("b-2"))
    fixture.runner.on("aws", "test", "create-c", reply: .ok("c-3"))
    // Listed backwards: only the references decide the order.
    let step = TestStep(
      "s",
      [
        createAction(
          "c", export: nil, arguments: ["--a", .ref("A_ID"), "--b", "x-\(ref: "B_ID")"]),
        createAction("b", export: "B_ID", arguments: ["--a", .ref("A_ID")]),
        createAction("a", export: "A_ID"),
      ])
    let summary = try await fixture.engine([step], jobs: 4).run([step])

    XCTAssertEqual(
      fixture.runner.calls.map(\.argv),
      [
        identity + ["--query", "Account", "--output", "text"] + region,
        ["aws", "test", "create-a"] + region,
        ["aws", "test", "create-b", "--a", "a-1"] + region,
        ["aws", "test", "create-c", "--a", "a-1", "--b", "x-b-2"] + region,
      ])
    XCTAssertEqual(summary.outcomes, ["s/a": .created, "s/b": .created, "s/c": .created])
    XCTAssertFalse(summary.nothingToDo)
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-1", "B_ID": "b-2"])
    XCTAssertEqual(checkpoint.account, "123456789012")
    XCTAssertEqual(checkpoint.record("s", "c")?.value, "c-3")
    XCTAssertEqual(checkpoint.record("s", "c")?.outcome, .created)
    XCTAssertEqual(checkpoint.record("s", "a")?.export, "A_ID")
    XCTAssertNil(checkpoint.lastFailure)
    let events = try fixture.journal.entries(lineage: checkpoint.lineage).map {
      "\($0.event.rawValue) \($0.action) \($0.value ?? "")"
    }
    XCTAssertEqual(
      events,
      [
        "intent s/a ", "result s/a a-1", "intent s/b ", "result s/b b-2", "intent s/c ",
        "result s/c c-3",
      ])
  }

  func testContextValuesAreAvailableToEveryCommand() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity("210987654321")
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let step = TestStep(
      "s",
      [
        createAction(
          "a", export: "A_ID",
          arguments: [
            .ref(ContextValue.account), .ref(ContextValue.region), "t-\(ref: ContextValue.lineage)",
          ])
      ])
    _ = try await fixture.engine([step]).run([step])
    let lineage = try fixture.checkpoint().lineage
    XCTAssertEqual(
      fixture.runner.calls("aws", "test").map(\.argv),
      [["aws", "test", "create-a", "210987654321", "ap-northeast-2", "t-\(lineage)"] + region])
  }

  func testRerunAfterCompletionMakesNoCall() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = fixture.twoActionStep()
    _ = try await fixture.engine([step]).run([step])
    let before = try XCTUnwrap(contents(of: fixture.state.stateFile))

    let silent = ScriptedRunner()
    let summary = try await fixture.engine([step], runner: silent).run([step])
    XCTAssertTrue(summary.nothingToDo)
    XCTAssertEqual(summary.outcomes, [:])
    XCTAssertEqual(silent.calls, [])
    XCTAssertEqual(contents(of: fixture.state.stateFile), before)
  }

  // MARK: - Resuming an interrupted run

  func testIntentWithoutResultLooksUpAndRecordsRecovered() async throws {
    let fixture = try EngineFixture(test: self)
    let seeded = try fixture.seedCheckpoint()
    try fixture.journal.append(
      JournalEntry(
        lineage: seeded.lineage, event: .intent, action: "s/a", command: "aws test create-a"))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("a-7"))
    // No rule for create-a: running it again would fail the test.
    let step = TestStep("s", [createAction("a", export: "A_ID", lookup: true)])
    let summary = try await fixture.engine([step]).run([step])

    XCTAssertEqual(summary.outcomes, ["s/a": .recovered])
    XCTAssertEqual(
      fixture.runner.calls("aws", "test").map(\.argv),
      [
        ["aws", "test", "describe-a", "--query", "Ids", "--output", "text"] + region
      ])
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-7"])
    XCTAssertEqual(checkpoint.record("s", "a")?.outcome, .recovered)
    let last = try fixture.journal.latest(lineage: seeded.lineage)["s/a"]
    XCTAssertEqual(last?.event, .result)
    XCTAssertEqual(last?.outcome, .recovered)
    XCTAssertEqual(last?.value, "a-7")
  }

  func testIntentWithoutResultCreatesWhenTheLookupFindsNothing() async throws {
    let fixture = try EngineFixture(test: self)
    let seeded = try fixture.seedCheckpoint()
    try fixture.journal.append(JournalEntry(lineage: seeded.lineage, event: .intent, action: "s/a"))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-a", reply: .ok(""))
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-8"), repeatLast: false)
    let step = TestStep("s", [createAction("a", export: "A_ID", lookup: true)])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .created])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map { $0.argv[2] }, ["describe-a", "create-a"])
    XCTAssertEqual(try fixture.checkpoint().exports, ["A_ID": "a-8"])
  }

  func testLookupFindingSeveralUsesTheFirstAndWarns() async throws {
    let fixture = try EngineFixture(test: self)
    let seeded = try fixture.seedCheckpoint()
    try fixture.journal.append(JournalEntry(lineage: seeded.lineage, event: .intent, action: "s/a"))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("a-3\ta-4"))
    let step = TestStep("s", [createAction("a", export: "A_ID", lookup: true)])
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(try fixture.checkpoint().exports, ["A_ID": "a-3"])
    XCTAssertTrue(
      fixture.reporter.warnings.contains { $0.contains("a-3, a-4") }, "\(fixture.reporter.warnings)"
    )
  }

  func testJournalResultWithoutCheckpointRecordIsReplayedWithoutACall() async throws {
    let fixture = try EngineFixture(test: self)
    let seeded = try fixture.seedCheckpoint()
    try fixture.journal.append(JournalEntry(lineage: seeded.lineage, event: .intent, action: "s/a"))
    try fixture.journal.append(
      JournalEntry(
        lineage: seeded.lineage, event: .result, action: "s/a", value: "a-9", outcome: .created))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-b", reply: .ok("b-1"))
    let step = TestStep(
      "s",
      [
        createAction("a", export: "A_ID", lookup: true),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .created, "s/b": .created])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map(\.argv), [["aws", "test", "create-b", "a-9"] + region])
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-9", "B_ID": "b-1"])
    XCTAssertEqual(checkpoint.record("s", "a")?.outcome, .created)
  }

  func testEntriesOfAnotherLineageDoNotCount() async throws {
    // A journal left by an earlier checkpoint (deleted state, same folder) must not be replayed.
    let fixture = try EngineFixture(test: self)
    try fixture.seedCheckpoint()
    try fixture.journal.append(
      JournalEntry(lineage: "old", event: .result, action: "s/a", value: "a-1", outcome: .created))
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-2"))
    let step = TestStep("s", [createAction("a", export: "A_ID", lookup: true)])
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(try fixture.checkpoint().exports, ["A_ID": "a-2"])
  }

  // MARK: - AWS errors

  func testAlreadyDoneErrorCountsAsDone() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "ec2", "authorize-security-group-ingress",
      reply: .awsError(
        "InvalidPermission.Duplicate", operation: "AuthorizeSecurityGroupIngress",
        message: "The specified rule already exists"))
    let step = TestStep(
      "s",
      [
        Action(
          name: "ingress", summary: "allow 80", effect: .write,
          command: .aws("ec2", "authorize-security-group-ingress", "--port", "80"),
          alreadyDoneErrors: ["InvalidPermission.Duplicate"])
      ])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/ingress": .alreadyDone])
    let record = try fixture.checkpoint().record("s", "ingress")
    XCTAssertEqual(record?.status, .done)
    XCTAssertEqual(record?.outcome, .alreadyDone)
    XCTAssertNil(try fixture.checkpoint().lastFailure)
  }

  func testAlreadyDoneErrorWithLookupRecordsTheExistingValue() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-a",
      reply: .awsError(
        "ResourceExistsException", operation: "CreateSecret",
        message: "The operation failed because the secret unisync/encryption-key already exists."))
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("a-5"))
    var action = createAction("a", export: "A_ID", lookup: true)
    action.alreadyDoneErrors = ["ResourceExistsException"]
    let step = TestStep("s", [action])
    _ = try await fixture.engine([step]).run([step])
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-5"])
    XCTAssertEqual(checkpoint.record("s", "a")?.outcome, .alreadyDone)
  }

  func testThrottlingIsRetriedThenSucceeds() async throws {
    let fixture = try EngineFixture(test: self)
    let throttled = ScriptedRunner.Reply.failure(
      "An error occurred (Throttling) when calling the CreateVpc operation (reached max retries: 4): Rate exceeded"
    )
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      ["aws", "test", "create-a"], replies: [throttled, throttled, .ok("a-1")], repeatLast: false)
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .created])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-a").count, 3)
    XCTAssertEqual(fixture.reporter.retries.map(\.reason), ["Throttling", "Throttling"])
    XCTAssertEqual(try fixture.checkpoint().exports, ["A_ID": "a-1"])
  }

  // MARK: - Eventual consistency

  func testAnIDCreatedInThisRunThatIsNotVisibleYetIsRetried() async throws {
    let fixture = try EngineFixture(test: self)
    let notYet = ScriptedRunner.Reply.awsError(
      "InvalidVpcID.NotFound", operation: "CreateSubnet",
      message: "The vpc ID 'a-1' does not exist")
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    fixture.runner.on(
      ["aws", "test", "create-b"], replies: [notYet, notYet, .ok("b-1")], repeatLast: false)
    let step = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .created, "s/b": .created])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b").count, 3)
    XCTAssertEqual(fixture.reporter.retries.count, 2)
    XCTAssertTrue(
      fixture.reporter.retries.allSatisfy { $0.reason.hasPrefix("InvalidVpcID.NotFound: A_ID") },
      "\(fixture.reporter.retries.map(\.reason))")
  }

  func testAnIDFromAnEarlierRunThatIsNotFoundIsNotRetried() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let first = TestStep("s", [createAction("a", export: "A_ID")])
    _ = try await fixture.engine([first]).run([first])
    // A later run: the id comes from a checkpoint written an hour ago, and "not found" means
    // it is gone.
    var checkpoint = try fixture.checkpoint()
    checkpoint.actions["s/a"]?.finishedAt = timestamp(Date().addingTimeInterval(-3_600))
    try fixture.state.save(checkpoint)
    fixture.runner.on(
      "aws", "test", "create-b",
      reply: .awsError(
        "InvalidVpcID.NotFound", operation: "CreateSubnet",
        message: "The vpc ID 'a-1' does not exist"))
    let second = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([second]).run([second])
    }
    XCTAssertEqual(failure?.errorCode, "InvalidVpcID.NotFound")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b").count, 1)
    XCTAssertTrue(fixture.reporter.retries.isEmpty)
  }

  /// A run killed right after a create: the next run, moments later, still meets a service that
  /// does not see the id everywhere, and retries.
  func testAnIDARunCreatedMomentsAgoThatIsNotVisibleYetIsRetried() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let first = TestStep("s", [createAction("a", export: "A_ID")])
    _ = try await fixture.engine([first]).run([first])
    let notYet = ScriptedRunner.Reply.awsError(
      "InvalidSubnetID.NotFound", operation: "CreateRoute",
      message: "The subnet ID 'a-1' does not exist")
    fixture.runner.on(
      ["aws", "test", "create-b"], replies: [notYet, .ok("b-1")], repeatLast: false)
    let second = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let summary = try await fixture.engine([second]).run([second])
    XCTAssertEqual(summary.outcomes["s/b"], .created)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b").count, 2)
  }

  /// A VPC made by hand a second before an `--adopt` run: the run finds it, and the next command
  /// naming it meets a service that does not see it yet. It exists (the run just read it), so
  /// the command is retried as for an id the run made.
  func testAnAdoptedIDThatIsNotVisibleYetIsRetried() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "find-a", reply: .ok("a-7"))
    let notYet = ScriptedRunner.Reply.awsError(
      "InvalidVpcID.NotFound", operation: "ModifyVpcAttribute",
      message: "The vpc ID 'a-7' does not exist")
    fixture.runner.on(
      ["aws", "test", "create-b"], replies: [notYet, .ok("b-1")], repeatLast: false)
    var adopted = createAction("a", export: "A_ID")
    adopted.adoptLookup = Lookup(.aws("test", "find-a", "--query", "Ids", "--output", "text"))
    let step = TestStep(
      "s", [adopted, createAction("b", export: "B_ID", arguments: [.ref("A_ID")])])
    let summary = try await fixture.engine([step], adopt: true).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .adopted, "s/b": .created])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-a").count, 0)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b").count, 2)
    XCTAssertEqual(fixture.reporter.retries.map(\.action), ["b"])
  }

  func testANotVisibleYetErrorIsRetriedOnlyForItsWindow() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    fixture.runner.on(
      "aws", "test", "create-b",
      reply: .awsError(
        "InvalidGroup.NotFound", operation: "AuthorizeSecurityGroupIngress",
        message: "The security group 'a-1' does not exist"))
    let step = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.errorCode, "InvalidGroup.NotFound")
    XCTAssertGreaterThan(fixture.runner.calls("aws", "test", "create-b").count, 2)
  }

  func testThrottlingGivesUpAfterTheLastAttempt() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-a",
      reply: .awsError(
        "RequestLimitExceeded", operation: "CreateVpc", message: "Request limit exceeded."))
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.errorCode, "RequestLimitExceeded")
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "create-a").count, EngineFixture.fastRetry.attempts)
  }

  func testNonRetryableErrorStopsTheStepAndKeepsEarlierActions() async throws {
    let fixture = try EngineFixture(test: self)
    let leaked = Locked<String?>(nil)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    fixture.runner.on("aws", "test", "create-b") { invocation in
      // The CLI echoes the password it was given: the failure must still not show it.
      let password = fileArguments(invocation).first ?? "?"
      leaked.withLock { $0 = password }
      return .awsError(
        "InvalidSubnet.Conflict", operation: "CreateSubnet",
        message: "The CIDR '10.0.1.0/24' conflicts with another subnet (password \(password))")
    }
    let step = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction(
          "b", export: "B_ID", arguments: [.ref("A_ID"), "--password", .secretFile("pw")]),
      ],
      secrets: [SecretInput(name: "pw", label: "the password", source: .randomPassword(length: 20))]
    )
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    let password = try XCTUnwrap(leaked.value)
    XCTAssertEqual(password.count, 20)
    XCTAssertEqual(failure?.step, "s")
    XCTAssertEqual(failure?.action, "b")
    XCTAssertEqual(
      failure?.command,
      "aws test create-b a-1 --password file://<secret:pw> --region ap-northeast-2")
    XCTAssertEqual(failure?.errorCode, "InvalidSubnet.Conflict")
    XCTAssertEqual(failure?.termination, .exited(255))
    XCTAssertTrue(failure?.reason.contains("(password ***)") ?? false, failure?.reason ?? "")
    XCTAssertFalse(failure?.description.contains(password) ?? true)
    XCTAssertTrue(failure?.description.contains("AWS error: InvalidSubnet.Conflict") ?? false)

    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-1"])
    XCTAssertEqual(checkpoint.record("s", "a")?.status, .done)
    XCTAssertNil(checkpoint.record("s", "b"))
    XCTAssertEqual(checkpoint.lastFailure?.step, "s")
    XCTAssertEqual(checkpoint.lastFailure?.action, "b")
    XCTAssertTrue(checkpoint.lastFailure?.message.contains("InvalidSubnet.Conflict") ?? false)
    XCTAssertEqual(try fixture.journal.latest(lineage: checkpoint.lineage)["s/b"]?.event, .failed)
    for file in try stateFiles(fixture) {
      XCTAssertFalse(
        String(decoding: try XCTUnwrap(contents(of: file)), as: UTF8.self).contains(password), file)
    }

    // The next run resumes at b and clears the failure when b succeeds.
    let retry = ScriptedRunner()
    retry.answerCallerIdentity()
    retry.on("aws", "test", "create-b", reply: .ok("b-1"))
    let summary = try await fixture.engine([step], runner: retry).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .alreadyDone, "s/b": .created])
    XCTAssertEqual(retry.callsAfterIdentity.map { $0.argv[2] }, ["create-b"])
    XCTAssertNil(try fixture.checkpoint().lastFailure)
  }

  func testCapturedValueNotMatchingThePatternFails() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("None"))
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.action, "a")
    XCTAssertEqual(
      failure?.reason, "the output 'None' is not a valid A_ID (expected ^a-[0-9]+$)")
    let checkpoint = try fixture.checkpoint()
    XCTAssertNil(checkpoint.record("s", "a"))
    XCTAssertEqual(checkpoint.exports, [:])
    XCTAssertEqual(checkpoint.lastFailure?.action, "a")
    // The write may have happened: the journal keeps its intent so the next run looks first.
    XCTAssertEqual(try fixture.journal.latest(lineage: checkpoint.lineage)["s/a"]?.event, .intent)
  }

  func testLaunchFailureIsAStepFailure() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let failing = FailingLaunchRunner(inner: fixture.runner, failing: "create-a")
    let engine = Engine(
      deployment: fixture.deployment, state: fixture.state, catalogue: [step], runner: failing,
      reporter: fixture.reporter, prompter: nil, aws: AWSSettings(region: "ap-northeast-2"),
      options: RunOptions(assumeYes: true, retry: EngineFixture.fastRetry), environment: [:])
    let failure = await assertThrows(StepFailure.self) { try await engine.run([step]) }
    XCTAssertEqual(failure?.reason, "could not find executable 'aws' on PATH")
    XCTAssertNil(failure?.termination)
  }

  func testCallerIdentityFailureStopsBeforeAnyWrite() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.on(
      "aws", "sts", "get-caller-identity",
      reply: .failure(
        "Unable to locate credentials. You can configure credentials by running \"aws configure\".")
    )
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.step, "preflight")
    XCTAssertTrue(failure?.reason.contains("Unable to locate credentials") ?? false)
    XCTAssertEqual(fixture.runner.callsAfterIdentity, [])
    XCTAssertNil(try fixture.state.load(), "nothing pinned")
  }

  // MARK: - Waits and manual actions

  func testWaitPollsUntilTheState() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      ["aws", "test", "describe-state"],
      replies: [.ok("pending"), .ok("pending"), .ok("available")],
      repeatLast: false)
    let step = TestStep(
      "s",
      [
        .waitUntil(
          "ready", "wait", command: .aws("test", "describe-state"), success: ["available"],
          failure: ["failed"], timeoutSeconds: 10, intervalSeconds: 0.01)
      ])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/ready": .read])
    XCTAssertEqual(fixture.runner.calls("aws", "test").count, 3)
  }

  func testWaitEndsOnAFailureState() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(["aws", "test", "describe-state"], replies: [.ok("pending"), .ok("failed")])
    let step = TestStep(
      "s",
      [
        .waitUntil(
          "ready", "wait", command: .aws("test", "describe-state"), success: ["available"],
          failure: ["failed"], timeoutSeconds: 10, intervalSeconds: 0.01)
      ])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.reason, "reached state 'failed' while waiting for available")
    XCTAssertEqual(try fixture.checkpoint().lastFailure?.action, "ready")
  }

  func testManualActionStaysPendingWithYes() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = TestStep(
      "s",
      [
        Action(
          name: "databases", summary: "create the databases",
          effect: .manual("mysql -e 'CREATE DATABASE user_db'"), command: .aws("rds", "noop"))
      ])
    let summary = try await fixture.engine([step], yes: true).run([step])
    XCTAssertEqual(summary.outcomes, ["s/databases": .pendingManual])
    XCTAssertEqual(summary.pendingManual, ["s/databases"])
    XCTAssertEqual(fixture.runner.callsAfterIdentity, [])
    XCTAssertEqual(try fixture.checkpoint().record("s", "databases")?.status, .pendingManual)

    // Again with --yes: nothing can change, so nothing runs, but it is still reported.
    let silent = ScriptedRunner()
    let again = try await fixture.engine([step], yes: true, runner: silent).run([step])
    XCTAssertTrue(again.nothingToDo)
    XCTAssertEqual(again.pendingManual, ["s/databases"])
    XCTAssertEqual(silent.calls, [])

    // In a terminal the operator confirms it.
    let confirming = ScriptedRunner()
    confirming.answerCallerIdentity()
    let prompter = ScriptedPrompter(manual: [true])
    let confirmed = try await fixture.engine(
      [step], prompter: prompter, yes: false, runner: confirming
    ).run([step])
    XCTAssertEqual(confirmed.outcomes, ["s/databases": .confirmed])
    XCTAssertEqual(confirmed.pendingManual, [])
    XCTAssertEqual(prompter.manualQuestions, ["s/databases"])
    XCTAssertEqual(try fixture.checkpoint().record("s", "databases")?.outcome, .confirmed)
  }

  // MARK: - Malformed steps

  func testActionWaitingForAnUnknownActionFailsTheStep() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let step = TestStep(
      "s",
      [createAction("a", export: "A_ID"), createAction("b", export: nil, after: ["a", "typo"])])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.action, "b")
    XCTAssertTrue(failure?.reason.hasPrefix("it waits for typo, which can never finish") ?? false)
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b"), [])
  }

  func testDependencyCycleFailsTheStep() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    let step = TestStep(
      "s",
      [
        createAction("b", export: "B_ID", arguments: [.ref("C_ID")]),
        createAction("c", export: "C_ID", arguments: [.ref("B_ID")]),
      ])
    let failure = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(failure?.action, "b")
    XCTAssertTrue(failure?.reason.hasPrefix("it waits for c,") ?? false, failure?.reason ?? "")
    XCTAssertEqual(fixture.runner.callsAfterIdentity, [])
  }

  // MARK: - Interrupting

  func testInterruptStopsTheRunBeforeTheNextCommand() async throws {
    let fixture = try EngineFixture(test: self)
    let engineBox = Locked<Engine<Deployment>?>(nil)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a") { _ in
      engineBox.value?.interrupt(reason: "Ctrl-C")
      return .ok("a-1")
    }
    let step = TestStep(
      "s", [createAction("a", export: "A_ID"), createAction("b", export: "B_ID", after: ["a"])])
    let engine = fixture.engine([step], jobs: 1)
    engineBox.withLock { $0 = engine }
    let interrupted = await assertThrows(Interrupted.self) { try await engine.run([step]) }
    XCTAssertEqual(interrupted?.reason, "Ctrl-C")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b"), [])
    // What finished before the interrupt is kept.
    XCTAssertEqual(try fixture.checkpoint().exports, ["A_ID": "a-1"])
  }

  func testInterruptCutsARetryWaitShort() async throws {
    let fixture = try EngineFixture(test: self)
    let engineBox = Locked<Engine<Deployment>?>(nil)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-a") { _ in
      engineBox.value?.interrupt(reason: "SIGTERM")
      return .awsError("Throttling", operation: "CreateVpc", message: "Rate exceeded")
    }
    let step = TestStep("s", [createAction("a", export: "A_ID")])
    let engine = Engine(
      deployment: fixture.deployment, state: fixture.state, catalogue: [step],
      runner: fixture.runner, reporter: fixture.reporter, prompter: nil,
      aws: AWSSettings(region: "ap-northeast-2"),
      options: RunOptions(
        assumeYes: true,
        retry: RetryPolicy(attempts: 5, baseDelaySeconds: 3600, maxDelaySeconds: 3600)),
      environment: [:])
    engineBox.withLock { $0 = engine }
    // The wait is an hour: a run that ends at all before the deadline had it cut short.
    let interrupted = await assertThrows(Interrupted.self) {
      try await withDeadline(300) { try await engine.run([step]) }
    }
    XCTAssertEqual(interrupted?.reason, "SIGTERM")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-a").count, 1)
  }

  // MARK: - Helpers

  private func stateFiles(_ fixture: EngineFixture) throws -> [String] {
    let logs = try FileManager.default.contentsOfDirectory(atPath: fixture.state.logsDirectory)
    XCTAssertFalse(logs.isEmpty, "the run wrote an audit log")
    return [fixture.state.stateFile, fixture.state.journalFile]
      + logs.map { fixture.state.logsDirectory + "/" + $0 }
  }
}

/// The contents of every `file://` argument of an invocation, read while the command "runs"
/// (`file:///dev/stdin`: its standard input).
func fileArguments(_ invocation: Invocation) -> [String] {
  invocation.arguments.filter { $0.hasPrefix("file://") }.map {
    $0 == Resolver.standardInputFile
      ? String(decoding: invocation.standardInput ?? Data(), as: UTF8.self)
      : String(decoding: contents(of: String($0.dropFirst(7))) ?? Data(), as: UTF8.self)
  }
}

/// A runner that cannot start one command (as when `aws` is not installed) and delegates the rest.
struct FailingLaunchRunner: CommandRunner {
  let inner: ScriptedRunner
  let failing: String

  func run(_ invocation: Invocation) async throws -> ProcessOutput {
    if invocation.arguments.contains(failing) {
      throw ProcessLaunchError.executableNotFound(invocation.executable)
    }
    return try await inner.run(invocation)
  }

  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws -> PipelineOutput
  {
    try await inner.runPipeline(producer, into: consumer)
  }
}
