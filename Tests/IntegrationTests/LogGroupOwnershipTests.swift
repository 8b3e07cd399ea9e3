import Foundation
import RunbookProcess
import RunbookState
import XCTest

/// A log group that existed before the deployment (another team's, in a shared account).
extension ECRECSLambdaStepTests {
  /// `/ecs/<prefix>-user-service` exists with a 365-day retention before the run: the run uses
  /// it (already done) without cutting its retention to the configuration's 7 days, and
  /// `destroy` of the two steps keeps it, retention and all, while the deployment's own log
  /// groups go.
  func testALogGroupThatExistedKeepsItsRetentionThroughRunAndDestroy() async throws {
    let names = ResourceNames.other("keep" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let theirs = "/ecs/\(names.prefix)-user-service"
    _ = try await workspace.aws(["logs", "create-log-group", "--log-group-name", theirs])
    _ = try await workspace.aws([
      "logs", "put-retention-policy", "--log-group-name", theirs, "--retention-in-days", "365",
    ])
    func groups() async throws -> [String: Int?] {
      let answer = try await workspace.aws([
        "logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/\(names.prefix)-",
      ])
      let listed = (answer as? [String: Any])?["logGroups"] as? [[String: Any]] ?? []
      var result: [String: Int?] = [:]
      for group in listed {
        if let name = group["logGroupName"] as? String {
          result[name] = group["retentionInDays"] as? Int
        }
      }
      return result
    }

    // (The function's log group is not under /ecs/: the lambda step is left out.)
    let run = try await workspace.runLogged(["run", "ecr", "ecs", "--yes"])
    XCTAssertEqual(run.run.status, 0, run.run.summary)
    let retentions = run.calls.filter {
      ($0["argv"] as? [String] ?? []).prefix(2) == ["logs", "put-retention-policy"]
    }.compactMap { call -> String? in
      let argv = call["argv"] as? [String] ?? []
      return argv.firstIndex(of: "--log-group-name").map { argv[$0 + 1] }
    }
    XCTAssertFalse(retentions.contains(theirs), "their retention was changed: \(retentions)")
    // Three services' groups and the database task's (guide 3.3).
    XCTAssertEqual(retentions.count, 4, "the deployment's own groups get theirs: \(retentions)")
    XCTAssertTrue(
      run.run.stdout.contains("log-retention-user-service")
        && run.run.stdout.contains("it existed already"), run.run.stdout)
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.record("ecs", "log-group-user-service")?.outcome, .alreadyDone)
    let afterRun = try await groups()
    XCTAssertEqual(afterRun[theirs], 365, "\(afterRun)")
    XCTAssertEqual(afterRun.count, 5, "\(afterRun)")
    for (name, days) in afterRun where name != theirs { XCTAssertEqual(days, 7, name) }

    let destroy = try await workspace.run(["destroy", "ecs", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    XCTAssertTrue(
      destroy.stdout.contains("= delete-log-group-user-service: delete log group \(theirs) (kept"),
      destroy.stdout)
    let afterDestroy = try await groups()
    XCTAssertEqual(afterDestroy, [theirs: 365], "only theirs is left, as it was")
  }
}
