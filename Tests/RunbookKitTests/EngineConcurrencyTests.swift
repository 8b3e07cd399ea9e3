import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Independent actions of a step, and steps that need nothing of each other, run at once, never
/// more than `--jobs` actions in all.
final class EngineConcurrencyTests: XCTestCase {
  /// Counts the calls in flight and remembers the highest count.
  final class Gauge: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var highest = 0
    private(set) var reached = false

    func enter(target: Int) {
      lock.lock()
      current += 1
      highest = max(highest, current)
      if current >= target { reached = true }
      lock.unlock()
    }
    func leave() {
      lock.lock()
      current -= 1
      lock.unlock()
    }
    var hasReached: Bool {
      lock.lock()
      defer { lock.unlock() }
      return reached
    }
  }

  /// Answers `aws test create-pN` with `pN-1` after holding the call until `target` calls were in
  /// flight together (or `timeout` passed: only a failing test waits that long), then a little
  /// longer so that any extra call would overlap.
  func gatedRunner(_ fixture: EngineFixture, gauge: Gauge, target: Int, timeout: Double = 60) {
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test") { invocation in
      gauge.enter(target: target)
      let deadline = Date().addingTimeInterval(timeout)
      while !gauge.hasReached, Date() < deadline {
        try? await Task.sleep(nanoseconds: 1_000_000)
      }
      try? await Task.sleep(nanoseconds: 20_000_000)
      gauge.leave()
      let name = invocation.arguments[1].replacingOccurrences(of: "create-", with: "")
      return .ok("\(name)-1")
    }
  }

  func independentStep(_ count: Int) -> TestStep {
    TestStep("s", (1...count).map { createAction("p\($0)", export: "P\($0)_ID") })
  }

  func testIndependentActionsRunConcurrentlyUpToJobs() async throws {
    let fixture = try EngineFixture(test: self)
    let gauge = Gauge()
    gatedRunner(fixture, gauge: gauge, target: 3)
    let step = independentStep(7)
    let engine = fixture.engine([step], jobs: 3)
    let summary = try await withDeadline(180) { try await engine.run([step]) }
    XCTAssertTrue(gauge.hasReached, "3 calls were never in flight together")
    XCTAssertEqual(gauge.highest, 3)
    XCTAssertEqual(summary.outcomes.count, 7)
    XCTAssertEqual(try fixture.checkpoint().exports.count, 7)
  }

  func testOneJobRunsOneAtATime() async throws {
    let fixture = try EngineFixture(test: self)
    let gauge = Gauge()
    gatedRunner(fixture, gauge: gauge, target: 1)
    let step = independentStep(4)
    _ = try await withDeadline(180) { try await fixture.engine([step], jobs: 1).run([step]) }
    XCTAssertEqual(gauge.highest, 1)
  }

  func testAskingForApprovalRunsOneAtATime() async throws {
    let fixture = try EngineFixture(test: self)
    let gauge = Gauge()
    gatedRunner(fixture, gauge: gauge, target: 1)
    let step = independentStep(3)
    let prompter = ScriptedPrompter(approvals: [.all])
    _ = try await withDeadline(180) {
      try await fixture.engine([step], prompter: prompter, yes: false, jobs: 8).run([step])
    }
    XCTAssertEqual(gauge.highest, 1)
  }

  /// Answers `aws test create-NAME` with `NAME-1` after `milliseconds`, recording `start NAME`
  /// and `end NAME` in the order they happened. A call named in `overlapping` does not end before
  /// the call it names has started (or a minute has passed: only a failing test waits that
  /// long), so "they overlapped" is a condition, not a race against the clock.
  func recordingOrder(
    _ fixture: EngineFixture, milliseconds: UInt64, overlapping: [String: String] = [:]
  ) -> Locked<[String]> {
    let order = Locked<[String]>([])
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test") { invocation in
      let name = invocation.arguments[1].replacingOccurrences(of: "create-", with: "")
      order.withLock { $0.append("start \(name)") }
      try? await Task.sleep(nanoseconds: milliseconds * 1_000_000)
      if let other = overlapping[name] {
        let deadline = Date().addingTimeInterval(60)
        while !order.value.contains("start \(other)"), Date() < deadline {
          try? await Task.sleep(nanoseconds: 1_000_000)
        }
      }
      order.withLock { $0.append("end \(name)") }
      return .ok("\(name)-1")
    }
    return order
  }

  func testDependentActionsWaitForTheirProducers() async throws {
    // p1 and p2 are independent; p3 needs both; p4 comes `after` p3.
    let fixture = try EngineFixture(test: self)
    let order = recordingOrder(fixture, milliseconds: 10, overlapping: ["p1": "p2"])
    let step = TestStep(
      "s",
      [
        createAction("p4", export: nil, after: ["p3"]),
        createAction("p3", export: "P3_ID", arguments: [.ref("P1_ID"), .ref("P2_ID")]),
        createAction("p1", export: "P1_ID"),
        createAction("p2", export: "P2_ID"),
      ])
    _ = try await withDeadline(180) { try await fixture.engine([step], jobs: 4).run([step]) }
    let events = order.value
    func index(_ event: String) -> Int { events.firstIndex(of: event) ?? -1 }
    XCTAssertLessThan(index("end p1"), index("start p3"), "\(events)")
    XCTAssertLessThan(index("end p2"), index("start p3"), "\(events)")
    XCTAssertLessThan(index("end p3"), index("start p4"), "\(events)")
    // p1 and p2 overlapped.
    XCTAssertLessThan(index("start p2"), index("end p1"), "\(events)")
  }

  // MARK: - Steps beside each other

  /// Steps `a`, `b`, `c`…, each of `count` independent creates (`a1`, `a2`… exporting `A1_ID`…).
  func independentSteps(_ names: [String], count: Int) -> [TestStep] {
    names.map { name in
      TestStep(
        name,
        (1...count).map { createAction("\(name)\($0)", export: "\(name.uppercased())\($0)_ID") })
    }
  }

  func testStepsThatNeedNothingOfEachOtherRunAtOnceWithinJobs() async throws {
    let fixture = try EngineFixture(test: self)
    let gauge = Gauge()
    // Each step has 2 actions: 3 in flight together means two steps ran at once.
    gatedRunner(fixture, gauge: gauge, target: 3)
    let steps = independentSteps(["a", "b", "c"], count: 2)
    let summary = try await withDeadline(180) {
      try await fixture.engine(steps, jobs: 3).run(steps)
    }
    XCTAssertTrue(gauge.hasReached, "the steps never ran beside each other")
    XCTAssertEqual(gauge.highest, 3, "--jobs bounds the actions of all steps together")
    XCTAssertEqual(summary.outcomes.count, 6)
    XCTAssertEqual(try fixture.checkpoint().exports.count, 6)
  }

  func testOneJobRunsTheStepsOneAfterTheOther() async throws {
    let fixture = try EngineFixture(test: self)
    let gauge = Gauge()
    gatedRunner(fixture, gauge: gauge, target: 1)
    let steps = independentSteps(["a", "b"], count: 2)
    _ = try await withDeadline(180) { try await fixture.engine(steps, jobs: 1).run(steps) }
    XCTAssertEqual(gauge.highest, 1)
    XCTAssertEqual(
      fixture.runner.callsAfterIdentity.map { $0.argv[2] },
      ["create-a1", "create-a2", "create-b1", "create-b2"])
  }

  /// Steps start at once; an action waits only for the exports it uses, not for the rest of the
  /// step that makes them (the DB subnet group does not wait for the NAT gateway).
  func testAnActionWaitsForTheExportsItUsesNotForTheirWholeStep() async throws {
    let fixture = try EngineFixture(test: self)
    // a2 (after a1) does not end before b1 has started; c1 overlaps a1.
    let order = recordingOrder(fixture, milliseconds: 30, overlapping: ["a2": "b1", "a1": "c1"])
    let steps = [
      TestStep(
        "a",
        [createAction("a1", export: "A_ID"), createAction("a2", export: nil, after: ["a1"])]),
      TestStep("b", [createAction("b1", export: nil, arguments: [.ref("A_ID")])]),
      TestStep("c", [createAction("c1", export: "C_ID")]),
    ]
    XCTAssertEqual(fixture.engine(steps).stepDependencies(steps), [[], [], []])
    _ = try await withDeadline(180) { try await fixture.engine(steps, jobs: 4).run(steps) }
    let events = order.value
    func index(_ event: String) -> Int { events.firstIndex(of: event) ?? -1 }
    XCTAssertLessThan(index("end a1"), index("start b1"), "\(events)")
    XCTAssertLessThan(index("start b1"), index("end a2"), "b1 waited for all of a: \(events)")
    XCTAssertLessThan(index("start c1"), index("end a1"), "c needs nothing of a: \(events)")
    XCTAssertEqual(try fixture.checkpoint().record("b", "b1")?.status, .done)
  }

  /// An action naming a step in `afterSteps` waits for all of it (what AWS needs of a step with
  /// no id passing: the images a service pulls).
  func testAnActionAfterAStepWaitsForTheWholeStep() async throws {
    let fixture = try EngineFixture(test: self)
    let order = recordingOrder(fixture, milliseconds: 30)
    var b1 = createAction("b1", export: nil, arguments: [.ref("A_ID")])
    b1.afterSteps = ["a"]
    let steps = [
      TestStep(
        "a",
        [createAction("a1", export: "A_ID"), createAction("a2", export: nil, after: ["a1"])]),
      TestStep("b", [createAction("b0", export: "B0_ID"), b1]),
    ]
    let summary = try await withDeadline(180) {
      try await fixture.engine(steps, jobs: 4).run(steps)
    }
    let events = order.value
    func index(_ event: String) -> Int { events.firstIndex(of: event) ?? -1 }
    XCTAssertLessThan(index("end a2"), index("start b1"), "\(events)")
    XCTAssertEqual(summary.criticalPath?.links.map(\.action), ["a/a1", "a/a2", "b/b1"])
    XCTAssertLessThan(index("start b0"), index("end a1"), "b0 needs nothing of a: \(events)")
  }

  /// An action waiting for another step's export never starts when that step fails, and the
  /// failure reported is that step's.
  func testAnActionWaitingForAFailedStepsExportNeverStarts() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-a1",
      reply: .awsError("InvalidParameterValue", operation: "CreateA1", message: "no such zone"))
    fixture.runner.on("aws", "test", "create-b0", reply: .ok("b0-1"))
    let steps = [
      TestStep("a", [createAction("a1", export: "A_ID")]),
      TestStep(
        "b",
        [
          createAction("b0", export: "B0_ID"),
          createAction("b1", export: nil, arguments: [.ref("A_ID")]),
        ]),
    ]
    do {
      _ = try await withDeadline(180) { try await fixture.engine(steps, jobs: 4).run(steps) }
      XCTFail("the run should have failed")
    } catch let failure as StepFailure {
      XCTAssertEqual(failure.step, "a")
      XCTAssertEqual(failure.action, "a1")
    }
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b1").count, 0, "b1 was started")
    XCTAssertNil(try fixture.checkpoint().record("b", "b1"))
  }

  func testAFailedStepStopsTheStepsBesideItAndIsTheFailureReported() async throws {
    let fixture = try EngineFixture(test: self)
    let steps = [
      TestStep("a", [createAction("a1", export: "A1_ID")]),
      TestStep(
        "b", [createAction("b1", export: "B1_ID"), createAction("b2", export: nil, after: ["b1"])]),
    ]
    let engine = fixture.engine(steps, jobs: 4)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-a1",
      reply: .awsError("InvalidParameterValue", operation: "CreateA1", message: "no such zone"))
    fixture.runner.on("aws", "test", "create-b1") { _ in
      // b1 is in flight when a fails, and finishes afterwards.
      let deadline = Date().addingTimeInterval(60)
      while !engine.isHalted, Date() < deadline {
        try? await Task.sleep(nanoseconds: 1_000_000)
      }
      return .ok("b1-1")
    }
    do {
      _ = try await withDeadline(180) { try await engine.run(steps) }
      XCTFail("the run should have failed")
    } catch let failure as StepFailure {
      XCTAssertEqual(failure.step, "a")
      XCTAssertEqual(failure.action, "a1")
    }
    XCTAssertEqual(fixture.runner.calls("aws", "test", "create-b2").count, 0, "b2 was started")
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.record("b", "b1")?.status, .done, "what was in flight is kept")
    XCTAssertEqual(checkpoint.exports["B1_ID"], "b1-1")
  }
}
