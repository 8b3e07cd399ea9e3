import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// A setting applied after a create (``Action/configures``) changes only what this deployment
/// made or adopted: on a resource that existed already it makes no call.
final class EngineSettingTests: XCTestCase {
  /// `thing` creates something (AWS may answer that it exists); `retention` sets a value on it.
  func step() -> TestStep {
    var thing = createAction("thing", export: "THING_ID", lookup: true)
    thing.alreadyDoneErrors = ["ThingAlreadyExists"]
    var retention = Action(
      name: "retention", summary: "keep the thing 7 days", effect: .write,
      command: .aws("test", "put-retention", "--id", .ref("THING_ID"), "--days", "7"),
      idempotent: true)
    retention.configures = "thing"
    return TestStep("s", [thing, retention])
  }

  func testASettingIsAppliedToWhatTheRunCreated() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on("aws", "test", "create-thing", reply: .ok("thing-1"))
    fixture.runner.on("aws", "test", "put-retention", reply: .ok())
    let step = step()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(fixture.runner.calls("aws", "test", "put-retention").count, 1)
    XCTAssertEqual(try fixture.checkpoint().record("s", "retention")?.outcome, .created)
  }

  func testASettingLeavesAResourceThatExistedAlreadyAsItIs() async throws {
    let fixture = try EngineFixture(test: self)
    fixture.runner.answerCallerIdentity()
    fixture.runner.on(
      "aws", "test", "create-thing",
      reply: .awsError("ThingAlreadyExists", operation: "CreateThing", message: "it exists"))
    fixture.runner.on("aws", "test", "describe-thing", reply: .ok("thing-7"))
    let step = step()
    _ = try await fixture.engine([step]).run([step])
    XCTAssertEqual(
      fixture.runner.calls("aws", "test", "put-retention").count, 0,
      "another's resource keeps its settings")
    let checkpoint = try fixture.checkpoint()
    XCTAssertEqual(checkpoint.record("s", "thing")?.outcome, .alreadyDone)
    XCTAssertEqual(checkpoint.record("s", "retention")?.status, .done, "a rerun makes no call")
    XCTAssertTrue(
      fixture.reporter.all.contains {
        if case .actionFinished("s", "retention", .kept, let detail) = $0 {
          detail?.contains("existed already") == true
        } else {
          false
        }
      }, "\(fixture.reporter.all)")
    let plan = try await fixture.engine([step]).plan([step])
    XCTAssertNotNil(plan.first?.actions.first { $0.name == "retention" }?.kept)
  }
}
