import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Interactive approvals: [y]es, [n]o (skip, and what needs it), [a]ll in the step, [q]uit; `--yes`.
final class EngineApprovalTests: XCTestCase {
  /// a → A_ID; b needs A_ID; c is independent.
  let step = TestStep(
    "s",
    [
      createAction("a", export: "A_ID"),
      createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      createAction("c", export: "C_ID"),
    ])

  func answering(_ fixture: EngineFixture) {
    fixture.runner.answerCallerIdentity()
    for name in ["a", "b", "c", "d"] {
      fixture.runner.on("aws", "test", "create-\(name)", reply: .ok("\(name)-1"))
    }
  }

  func testYesRunsEachWriteAfterAsking() async throws {
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let prompter = ScriptedPrompter(approvals: [.yes, .yes, .yes])
    let summary = try await fixture.engine([step], prompter: prompter, yes: false).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .created, "s/b": .created, "s/c": .created])
    XCTAssertEqual(prompter.questions.map(\.action), ["a", "b", "c"])
    // The question shows the command as it will run, with the exports known by then.
    XCTAssertEqual(
      prompter.questions[1].command, "aws test create-b a-1 --region ap-northeast-2")
  }

  func testNoSkipsTheActionAndEverythingThatNeedsIt() async throws {
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let prompter = ScriptedPrompter(approvals: [.skip, .yes])
    let summary = try await fixture.engine([step], prompter: prompter, yes: false).run([step])
    XCTAssertEqual(summary.outcomes, ["s/a": .skipped, "s/b": .skipped, "s/c": .created])
    XCTAssertEqual(prompter.questions.map(\.action), ["a", "c"], "b is not even asked")
    XCTAssertEqual(fixture.runner.callsAfterIdentity.map { $0.argv[2] }, ["create-c"])
    let checkpoint = try fixture.checkpoint()
    XCTAssertNil(checkpoint.record("s", "a"))
    XCTAssertNil(checkpoint.record("s", "b"))
    XCTAssertEqual(checkpoint.exports, ["C_ID": "c-1"])
    XCTAssertNil(
      try fixture.journal.latest(lineage: checkpoint.lineage)["s/a"],
      "a skipped write leaves no intent"
    )
  }

  func testSkipReachesDependentsListedBeforeTheirProducer() async throws {
    // c needs b, b needs a, listed as a, c, b: skipping a skips both.
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let chain = TestStep(
      "s",
      [
        createAction("a", export: "A_ID"),
        createAction("c", export: "C_ID", arguments: [.ref("B_ID")]),
        createAction("b", export: "B_ID", arguments: [.ref("A_ID")]),
      ])
    let prompter = ScriptedPrompter(approvals: [.skip])
    let summary = try await fixture.engine([chain], prompter: prompter, yes: false).run([chain])
    XCTAssertEqual(summary.outcomes, ["s/a": .skipped, "s/b": .skipped, "s/c": .skipped])
    XCTAssertEqual(fixture.runner.callsAfterIdentity, [])
  }

  func testAllApprovesTheRestOfTheStepOnly() async throws {
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let second = TestStep(
      "t", [createAction("d", export: "D_ID"), createAction("e", export: "E_ID", prefix: "d")])
    fixture.runner.on("aws", "test", "create-e", reply: .ok("d-2"))
    let prompter = ScriptedPrompter(approvals: [.all, .all])
    let summary = try await fixture.engine([step, second], prompter: prompter, yes: false)
      .run([step, second])
    XCTAssertEqual(prompter.questions.map { "\($0.step)/\($0.action)" }, ["s/a", "t/d"])
    XCTAssertEqual(summary.outcomes.count, 5)
    XCTAssertTrue(summary.outcomes.values.allSatisfy { $0 == .created })
  }

  func testQuitInterruptsAndKeepsWhatWasDone() async throws {
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let prompter = ScriptedPrompter(approvals: [.yes, .quit])
    let interrupted = await assertThrows(Interrupted.self) {
      try await fixture.engine([step], prompter: prompter, yes: false).run([step])
    }
    XCTAssertEqual(interrupted?.reason, "quit at the prompt")
    XCTAssertEqual(fixture.runner.callsAfterIdentity.map { $0.argv[2] }, ["create-a"])
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports, ["A_ID": "a-1"])
    XCTAssertNil(checkpoint.record("s", "b"))
    XCTAssertNil(try fixture.journal.latest(lineage: checkpoint.lineage)["s/b"])
  }

  func testYesOptionNeverConsultsThePrompter() async throws {
    let fixture = try EngineFixture(test: self)
    answering(fixture)
    let prompter = ScriptedPrompter()
    let manual = Action(
      name: "by-hand", summary: "do it", effect: .manual("do it by hand"), command: .aws("x", "y"))
    let withManual = TestStep("s", step.list + [manual])
    let summary = try await fixture.engine([withManual], prompter: prompter, yes: true)
      .run([withManual])
    XCTAssertFalse(prompter.consulted)
    XCTAssertEqual(summary.outcomes["s/b"], .created)
    XCTAssertEqual(summary.outcomes["s/by-hand"], .pendingManual)
  }

  func testReadsAreNotAsked() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "describe-x", reply: .ok("x-1"))
    let read = Action(
      name: "x", summary: "read x", effect: .read, command: .aws("test", "describe-x"),
      capture: Capture(export: "X_ID", pattern: "^x-[0-9]+$"))
    let prompter = ScriptedPrompter()
    let step = TestStep("s", [read])
    let summary = try await fixture.engine([step], prompter: prompter, yes: false).run([step])
    XCTAssertEqual(summary.outcomes, ["s/x": .read])
    XCTAssertFalse(prompter.consulted)
    XCTAssertEqual(try fixture.checkpoint().exports, ["X_ID": "x-1"])
  }
}
