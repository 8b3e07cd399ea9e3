import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Procedures, repeatable actions and teardowns in the engine, with a scripted runner.
final class EngineProcedureTests: XCTestCase {
  let region = ["--region", "ap-northeast-2"]

  /// A read procedure: asks `aws test describe-x`, reports it, records X_STATE before returning.
  func probeAction(repeatable: Bool = true) -> Action {
    let describe = Command.aws("test", "describe-x", "--id", .ref("A_ID"))
    let procedure = Procedure(
      "probe x", outline: [.command(describe), .note("then judge <X_STATE>")], requires: ["A_ID"]
    ) {
      context in
      let state = try await context.output(
        .aws("test", "describe-x", "--id", .text(context.values["A_ID"] ?? "?"))
      )
      .trimmingCharacters(in: .whitespacesAndNewlines)
      context.progress("x is \(state)")
      try await context.record(export: "X_STATE", value: state)
      guard state == "healthy" else { throw ProcedureFailure("x is \(state), not healthy") }
      return state
    }
    return Action(
      name: "probe", summary: "probe x", effect: .read, command: describe, procedure: procedure,
      repeatable: repeatable)
  }

  func testAProcedureRunsItsCommandsThroughTheEngineAndRecordsWhatItLearns() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-x", reply: .ok("healthy"))
    try fixture.seedCheckpoint { $0.exports["A_ID"] = "a-1" }
    let step = TestStep("s", [probeAction()])
    let summary = try await fixture.engine([step]).run([step])

    XCTAssertEqual(summary.outcomes, ["s/probe": .read])
    XCTAssertEqual(
      fixture.runner.calls("aws", "test").map(\.argv),
      [["aws", "test", "describe-x", "--id", "a-1"] + region])
    XCTAssertTrue(
      fixture.reporter.all.contains(.progress(step: "s", action: "probe", message: "x is healthy")))
    XCTAssertTrue(
      fixture.reporter.all.contains(
        .commandStarted(
          step: "s", action: "probe",
          command: "aws test describe-x --id a-1 --region ap-northeast-2")))
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports["X_STATE"], "healthy")
    XCTAssertEqual(checkpoint.record("s", "probe")?.value, "healthy")
    let log = try String(
      contentsOfFile: try XCTUnwrap(AuditLog.latest(in: fixture.state.logsDirectory)),
      encoding: .utf8)
    XCTAssertTrue(
      log.contains(
        "[s/probe] aws test describe-x --id a-1 --region ap-northeast-2 -> exit status 0"), log)
    XCTAssertTrue(log.contains("[s/probe] recorded X_STATE=healthy"), log)
  }

  func testARepeatableActionRunsEveryTimeAndAFailureSaysWhy() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-x", reply: .ok("healthy"), .ok("degraded"))
    try fixture.seedCheckpoint { $0.exports["A_ID"] = "a-1" }
    let step = TestStep("s", [probeAction()])
    _ = try await fixture.engine([step]).run([step])
    // Done in the checkpoint, yet run again: its work is the checking itself.
    let error = await assertThrows(StepFailure.self) {
      try await fixture.engine([step]).run([step])
    }
    XCTAssertEqual(error?.reason, "x is degraded, not healthy")
    XCTAssertEqual(error?.action, "probe")
    XCTAssertEqual(fixture.runner.calls("aws", "test").count, 2)
    XCTAssertEqual(try fixture.checkpoint().lastFailure?.message, "x is degraded, not healthy")
    XCTAssertEqual(
      try fixture.checkpoint().exports["X_STATE"], "degraded", "recorded before the failure")
    // A once-only action would not run again.
    let other = try EngineFixture(test: self)
    other.runner.answerCallerIdentity()
    other.runner.on("aws", "test", "describe-x", reply: .ok("healthy"))
    try other.seedCheckpoint { $0.exports["A_ID"] = "a-1" }
    let once = TestStep("t", [probeAction(repeatable: false)])
    _ = try await other.engine([once]).run([once])
    let rerun = try await other.engine([once]).run([once])
    XCTAssertTrue(rerun.nothingToDo)
    XCTAssertEqual(other.runner.calls("aws", "test").count, 1)
  }

  func testPlanShowsAProceduresOutlineWithPlaceholdersAndNeedsOnlyWhatItDeclares() async throws {
    let fixture = try EngineFixture(test: self)
    let step = TestStep("s", [probeAction()])
    let planned = try await fixture.engine([step]).plan([step])
    XCTAssertEqual(
      planned.first?.actions.first?.command,
      "aws test describe-x --id <A_ID> --region ap-northeast-2\nthen judge <X_STATE>")
    XCTAssertEqual(step.requiredExports(for: fixture.deployment), ["A_ID"])
    XCTAssertEqual(fixture.runner.calls, [])
  }

  // MARK: - Teardown

  func testATeardownDeletesOnlyWhatTheDeploymentCreatedThenForgetsTheStep() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "delete-a", reply: .ok())
    fixture.runner.on(
      "aws", "test", "delete-e", reply: .awsError("NotFound", operation: "DeleteE", message: "gone")
    )
    try fixture.seedCheckpoint { checkpoint in
      checkpoint.exports = ["A_ID": "a-1", "B_ID": "b-1", "C_ID": "c-1", "E_ID": "e-1"]
      checkpoint.actions = [
        "s/a": ActionRecord(status: .done, outcome: .created, value: "a-1", export: "A_ID"),
        "s/b": ActionRecord(status: .done, outcome: .adopted, value: "b-1", export: "B_ID"),
        "s/c": ActionRecord(status: .done, outcome: .alreadyDone, value: "c-1", export: "C_ID"),
        "s/e": ActionRecord(status: .done, outcome: .recovered, value: "e-1", export: "E_ID"),
        "other/x": ActionRecord(status: .done, outcome: .created, value: nil, export: nil),
      ]
    }
    func delete(_ name: String, after: [String] = []) -> Action {
      Action(
        name: "delete-\(name)", summary: "delete \(name)", effect: .write,
        command: .aws("test", "delete-\(name)", "--id", .ref("\(name.uppercased())_ID")),
        alreadyDoneErrors: ["NotFound"], after: after, deletes: name)
    }
    struct Made: Step {
      let id = "s"
      let section = "1"
      let title = "made"
      let teardownActions: [Action]
      func actions(for deployment: Deployment) -> [Action] { [] }
      func teardown(for deployment: Deployment) -> [Action] { teardownActions }
    }
    let made = Made(teardownActions: [
      delete("a", after: ["delete-b"]), delete("b"), delete("c"), delete("d"), delete("e"),
    ])
    let teardown = TeardownStep(made)
    let planned = try await fixture.engine([teardown]).plan([teardown])
    XCTAssertEqual(
      planned.first?.actions.map { $0.kept ?? "delete" },
      [
        "delete", "adopted (--adopt), not created by this deployment",
        "it existed already, not created by this deployment", "never created by this deployment",
        "delete",
      ])

    let summary = try await fixture.engine([teardown]).run([teardown])
    XCTAssertEqual(
      summary.outcomes,
      [
        "s/delete-a": .deleted, "s/delete-b": .kept, "s/delete-c": .kept, "s/delete-d": .kept,
        "s/delete-e": .alreadyDone,
      ])
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map(\.argv).sorted { $0[2] < $1[2] },
      [
        ["aws", "test", "delete-a", "--id", "a-1"] + region,
        ["aws", "test", "delete-e", "--id", "e-1"] + region,
      ]
      .sorted { $0[2] < $1[2] })
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(
      Set(checkpoint.actions.keys), ["other/x"], "the step is forgotten, the others are not")
    XCTAssertEqual(checkpoint.exports, [:])
    XCTAssertEqual(try fixture.journal.entries(lineage: checkpoint.lineage).last?.event, .reset)
  }

  func testWhatAPrecheckFindsAfterAnUnfinishedWriteIsRecovered() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "find-a", reply: .ok("a-7"))
    let checkpoint = try fixture.seedCheckpoint()
    // An earlier run journaled the intent and was killed before the result.
    try fixture.journal.append(
      JournalEntry(
        lineage: checkpoint.lineage, event: .intent, action: "s/a", command: "aws test create-a"))
    var create = createAction("a", export: "A_ID")
    create.precheck = Precheck(.aws("test", "find-a"), rule: "a exists") { output, _ in
      output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let step = TestStep("s", [create])
    let summary = try await fixture.engine([step]).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .recovered])
    XCTAssertEqual(
      try fixture.checkpoint().record("s", "a")?.outcome, .recovered, "destroy will delete it")
    XCTAssertTrue(fixture.runner.calls("aws", "test", "create-a").isEmpty)
  }

  /// A precheck finds a resource by name, and a second read says whose it is: this deployment's
  /// is recorded `recovered` (a checkpoint that forgot it, `runbook reset`); another's stops the
  /// step before the create, with the ownership's reason; none lets the create run.
  func testAPrecheckWithOwnershipRecoversItsOwnAndRefusesAnothers() async throws {
    func create() -> Action {
      var create = createAction("a", export: "A_ID")
      create.precheck = Precheck(.aws("test", "find-a"), rule: "a exists") { output, _ in
        let found = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return found.isEmpty ? nil : found
      }
      create.precheck?.ownership = Precheck.Ownership(
        .aws("test", "tags-of", .ref(Precheck.found)), refusal: "a exists, and is not ours"
      ) { output, values in
        output.trimmingCharacters(in: .whitespacesAndNewlines) == values[ContextValue.lineage]
      }
      return create
    }

    // Another's: stopped before the create.
    let theirs = try EngineFixture(test: self)
    theirs.runner.answerCallerIdentity()
    theirs.runner.on("aws", "test", "find-a", reply: .ok("a-7"))
    theirs.runner.on("aws", "test", "tags-of", "a-7", reply: .ok("someone-else"))
    let refused = TestStep("s", [create()])
    let failure = await assertThrows(StepFailure.self) {
      try await theirs.engine([refused]).run([refused])
    }
    XCTAssertTrue(failure?.reason.contains("a exists, and is not ours") ?? false, "\(failure!)")
    XCTAssertTrue(theirs.runner.calls("aws", "test", "create-a").isEmpty)

    // Its own (the lineage tag is the checkpoint's): recovered, no create.
    let own = try EngineFixture(test: self)
    own.runner.answerCallerIdentity()
    let lineage = try own.seedCheckpoint().lineage
    own.runner.on("aws", "test", "find-a", reply: .ok("a-7"))
    own.runner.on("aws", "test", "tags-of", "a-7", reply: .ok(lineage))
    let found = TestStep("s", [create()])
    let summary = try await own.engine([found]).run([found])
    XCTAssertEqual(summary.outcomes, ["s/a": .recovered])
    XCTAssertTrue(own.runner.calls("aws", "test", "create-a").isEmpty)

    // None: created, no ownership read.
    let none = try EngineFixture(test: self)
    none.runner.answerCallerIdentity()
    none.runner.on("aws", "test", "find-a", reply: .ok(""))
    none.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
    let made = TestStep("s", [create()])
    let created = try await none.engine([made]).run([made])
    XCTAssertEqual(created.outcomes, ["s/a": .created])
    XCTAssertTrue(none.runner.calls("aws", "test", "tags-of").isEmpty)
  }

  /// A write killed between its call and its answer, that nothing can look up and that is not
  /// marked idempotent, is not made again blindly: the step stops, naming the way out. Marked
  /// idempotent, it is simply repeated.
  func testABlindWriteIsNotRepeatedAfterAnUnansweredCallUnlessIdempotent() async throws {
    for idempotent in [false, true] {
      let fixture = try EngineFixture(test: self)
      fixture.runner.answerCallerIdentity()
      fixture.runner.on("aws", "test", "create-a", reply: .ok("a-1"))
      let checkpoint = try fixture.seedCheckpoint()
      try fixture.journal.append(
        JournalEntry(
          lineage: checkpoint.lineage, event: .intent, action: "s/a", command: "aws test create-a")
      )
      var write = createAction("a", export: "A_ID")
      write.idempotent = idempotent
      XCTAssertEqual(StepExecution.blindWrites([write]), idempotent ? [] : ["a"])
      let step = TestStep("s", [write])
      if idempotent {
        let summary = try await fixture.engine([step]).run([step])
        XCTAssertEqual(summary.outcomes, ["s/a": .created])
        XCTAssertEqual(fixture.runner.calls("aws", "test", "create-a").count, 1)
      } else {
        let failure = await assertThrows(StepFailure.self) {
          try await fixture.engine([step]).run([step])
        }
        XCTAssertTrue(
          failure?.reason.contains("stopped before its answer") ?? false,
          "\(String(describing: failure))")
        XCTAssertTrue(failure?.reason.contains("'runbook reset s'") ?? false)
        XCTAssertEqual(fixture.runner.calls("aws", "test", "create-a").count, 0)
      }
    }
  }
}
