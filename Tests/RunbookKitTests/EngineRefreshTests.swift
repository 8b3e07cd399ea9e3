import Foundation
import XCTest

@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// `run --refresh` in the engine: which done actions run again, and what it refuses.
final class EngineRefreshTests: XCTestCase {
  /// A step of a resource `a` (read back as its size), a setting on it, `b` that uses `a`'s id,
  /// and `c` that uses nothing: all recorded done.
  private func doneStep(_ fixture: EngineFixture, settingCommand: String? = nil) throws
    -> TestStep
  {
    let a = createAction("a", export: "A_ID").observed(
      by: Observation(
        .aws("test", "describe-a", "--id", .ref("A_ID")), expected: "big", describes: "size",
        missingErrors: ["NotFound"]))
    let setting = Action(
      name: "setting", summary: "set a's size", effect: .write,
      command: .aws("test", "modify-a", "--id", .ref("A_ID"), "--size", "big")
    ).observed(
      by: Observation(
        .aws("test", "describe-setting", "--id", .ref("A_ID")), expected: "big",
        describes: "size setting", missingErrors: []))
    let b = createAction("b", export: "B_ID", arguments: ["--a", .ref("A_ID")])
    let c = createAction("c", export: "C_ID")
    try fixture.seedCheckpoint { checkpoint in
      for (name, export, value) in [
        ("a", "A_ID", "a-1"), ("b", "B_ID", "b-1"), ("c", "C_ID", "c-1"),
        ("setting", nil, nil),
      ] {
        checkpoint.actions["s/\(name)"] = ActionRecord(
          status: .done, outcome: .created, value: value, export: export,
          command: name == "setting" ? settingCommand : nil)
        if let export, let value { checkpoint.exports[export] = value }
      }
    }
    fixture.runner.answerCallerIdentity()
    return TestStep("s", [a, setting, b, c])
  }

  /// `a` is gone: its read answers NotFound, and making it and what uses it again succeeds.
  private func answerAMissing(_ fixture: EngineFixture) {
    fixture.runner.on(
      "aws", "test", "describe-a",
      reply: .awsError("NotFound", operation: "DescribeA", message: "no such a"))
    fixture.runner.on("aws", "test", "create-a", reply: .ok("a-2"))
    fixture.runner.on("aws", "test", "create-b", reply: .ok("b-2"))
    fixture.runner.on("aws", "test", "modify-a", reply: .ok())
  }

  private func writes(_ fixture: EngineFixture) -> [String] {
    fixture.runner.calls.filter { $0.argv.count > 2 && !$0.argv[2].hasPrefix("describe") }
      .filter { $0.argv[1] == "test" }.map { $0.argv[2] }
  }

  func testAChangedSettingRunsOnlyThatActionAgain() async throws {
    let fixture = try EngineFixture(test: self)
    let step = try doneStep(fixture)
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("big"))
    fixture.runner.on("aws", "test", "describe-setting", reply: .ok("small"))
    fixture.runner.on("aws", "test", "modify-a", reply: .ok())
    let engine = fixture.engine([step], refresh: true)
    let plan = try await engine.refreshPlan([step])
    XCTAssertEqual(plan.reruns.map(\.key), ["s/setting"])
    XCTAssertTrue(
      plan.reruns[0].reason.hasPrefix("changed: size setting is small"), plan.reruns[0].reason)
    _ = try await engine.run([step])
    XCTAssertEqual(writes(fixture), ["modify-a"])
    XCTAssertEqual(try fixture.checkpoint().record("s", "setting")?.status, .done)
    let resets = try fixture.journal.entries().filter { $0.event == .reset }
    XCTAssertEqual(resets.map(\.action), ["s/setting"])
  }

  func testAMissingResourceRunsAgainWithWhatUsesItAndNothingElse() async throws {
    let fixture = try EngineFixture(test: self)
    let step = try doneStep(fixture)
    answerAMissing(fixture)
    let engine = fixture.engine([step], refresh: true)
    _ = try await engine.run([step])
    XCTAssertEqual(writes(fixture).sorted(), ["create-a", "create-b", "modify-a"])
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.exports["A_ID"], "a-2")
    XCTAssertEqual(checkpoint.exports["B_ID"], "b-2")
    XCTAssertEqual(checkpoint.exports["C_ID"], "c-1", "what uses nothing made anew stays")
    let modify = try XCTUnwrap(fixture.runner.calls("aws", "test", "modify-a").first)
    XCTAssertEqual(modify.value(of: "--id"), "a-2", "the setting goes to the new resource")
  }

  func testAChangedCreateIsRefusedAndNothingIsWritten() async throws {
    let fixture = try EngineFixture(test: self)
    let step = try doneStep(fixture)
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("small"))
    fixture.runner.on("aws", "test", "describe-setting", reply: .ok("big"))
    let before = contents(of: fixture.state.stateFile)
    let engine = fixture.engine([step], refresh: true)
    do {
      _ = try await engine.run([step])
      XCTFail("a changed create must be refused")
    } catch let error as RefreshRefused {
      XCTAssertEqual(error.refusals.map(\.action), ["a"])
      XCTAssertTrue("\(error)".contains("'runbook destroy s', then 'runbook run s'"), "\(error)")
    }
    XCTAssertEqual(writes(fixture), [])
    XCTAssertEqual(contents(of: fixture.state.stateFile), before)
    XCTAssertNil(contents(of: fixture.state.journalFile))
  }

  func testASettingDoneWithAnotherConfigurationRunsAgain() async throws {
    let fixture = try EngineFixture(test: self)
    let step = try doneStep(
      fixture, settingCommand: "aws test modify-a --id <A_ID> --size small")
    fixture.runner.on("aws", "test", "describe-a", reply: .ok("big"))
    fixture.runner.on("aws", "test", "describe-setting", reply: .ok("big"))
    fixture.runner.on("aws", "test", "modify-a", reply: .ok())
    let engine = fixture.engine([step], refresh: true)
    let plan = try await engine.refreshPlan([step])
    XCTAssertEqual(plan.reruns.map(\.key), ["s/setting"])
    XCTAssertTrue(plan.reruns[0].reason.hasPrefix("done with another configuration"))
    let summary = try await engine.run([step])
    XCTAssertEqual(writes(fixture), ["modify-a"])
    XCTAssertEqual(summary.configurationDrift, [], "converged, not reported as drift")
    // Without --refresh the same drift is only reported.
    let unrefreshed = try EngineFixture(test: self)
    let again = try doneStep(
      unrefreshed, settingCommand: "aws test modify-a --id <A_ID> --size small")
    let report = try await unrefreshed.engine([again]).run([again])
    XCTAssertEqual(report.configurationDrift.map(\.action), ["setting"])
    XCTAssertEqual(writes(unrefreshed), [])
  }

  /// A done action of a step outside the run that uses an export made anew is listed, not reset:
  /// its step is not part of the run.
  func testADependentOutsideTheRunIsListedAndLeftAlone() async throws {
    let fixture = try EngineFixture(test: self)
    let step = try doneStep(fixture)
    let user = createAction("user", export: "USER_ID", arguments: ["--a", .ref("A_ID")])
    let other = TestStep("t", [user])
    var checkpoint = try fixture.checkpoint()
    checkpoint.actions["t/user"] = ActionRecord(
      status: .done, outcome: .created, value: "user-1", export: "USER_ID")
    checkpoint.exports["USER_ID"] = "user-1"
    try fixture.state.save(checkpoint)
    answerAMissing(fixture)
    let engine = fixture.engine([step], catalogue: [step, other], refresh: true)
    let plan = try await engine.refreshPlan([step])
    XCTAssertEqual(plan.reruns.map(\.key).sorted(), ["s/a", "s/b", "s/setting"])
    XCTAssertEqual(plan.outside.map(\.key), ["t/user"])
    XCTAssertEqual(plan.outside.first?.reason, "uses A_ID, which s/a makes anew")
    _ = try await engine.run([step])
    XCTAssertEqual(try fixture.checkpoint().record("t", "user")?.value, "user-1")
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-user").count, 0)
  }
}
