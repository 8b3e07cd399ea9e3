import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// What an operator does with a test environment, all under the strict layer (AWS's own rules:
/// ids not visible at once, NAT gateways and DB instances that take their time, client tokens
/// remembered, secret names held while scheduled for deletion, queue names held for a minute
/// after their delete): deploy, `destroy --yes --force`, deploy again on the same state directory.
final class RedeployTests: XCTestCase {
  let steps = ["network", "security", "rds", "secrets", "sqs"]

  func testDeployDestroyAndDeployAgainUnderTheStrictLayer() async throws {
    let strict = try StrictLayer.forThisProcess()
    try strict.reset()
    try strict.configure(["all"], frozen: false)
    defer { try? strict.reset() }
    let workspace = try Workspace(strict: true)
    let supplied = SecretsStepTests.Supplied().environment

    let first = try await workspace.run(
      ["run"] + steps + ["--yes"], environment: supplied, endpoint: strict.url)
    XCTAssertEqual(first.status, 0, first.summary)
    let deployed = try await DayTwoTests.inventory(workspace).left
    try assertOneOfEach(deployed, "after the first deployment")

    let destroy = try await workspace.run(
      ["destroy", "--yes", "--force"], environment: supplied, endpoint: strict.url)
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    let gone = try await DayTwoTests.inventory(workspace)
    XCTAssertEqual(gone.left, [:], "nothing of the deployment is left after destroy")
    XCTAssertEqual(
      gone.secretsPendingDeletion.sorted(),
      [
        "unisync/canvas-api-token", "unisync/cognito-config", "unisync/db-course-service",
        "unisync/db-schedule-service", "unisync/db-user-service", "unisync/encryption-key",
      ])

    // Straight away: the secrets' names are held (scheduled for deletion), the queues' names
    // too (deleted less than a minute ago), and the NAT gateway needs a new client token.
    let second = try await workspace.run(
      ["run"] + steps + ["--yes"], environment: supplied, endpoint: strict.url)
    XCTAssertEqual(second.status, 0, second.summary)
    let redeployed = try await DayTwoTests.inventory(workspace)
    try assertOneOfEach(redeployed.left, "after the second deployment")
    XCTAssertEqual(redeployed.secretsPendingDeletion, [], "the secrets are restored")
    let checkpoint = try workspace.checkpoint()
    for secret in ["encryption-key", "canvas-api-token", "cognito-config"] {
      XCTAssertEqual(
        checkpoint.record("secrets", secret)?.outcome, .recovered,
        "\(secret): restored, and this deployment's own (destroy deletes it)")
    }
    XCTAssertNotEqual(
      checkpoint.exports["NAT_ID"], nil, "a new NAT gateway, with a token of its own")
  }

  /// One VPC, four subnets, one internet gateway, Elastic IP, NAT gateway, two route tables,
  /// three security groups, one DB subnet group and instance, seven secrets (three of the
  /// guide's, the one RDS manages for the master password and the three database services'
  /// own users'), five queues.
  func assertOneOfEach(
    _ left: [String: [String]], _ when: String, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let counts = left.mapValues(\.count)
    for (kind, count) in [
      ("vpc", 1), ("subnet", 4), ("internet-gateway", 1), ("elastic-ip", 1), ("nat-gateway", 1),
      ("route-table", 2), ("security-group", 3), ("db-subnet-group", 1), ("db-instance", 1),
      ("secret", 7), ("queue", 5),
    ] {
      XCTAssertEqual(counts[kind], count, "\(kind) \(when): \(left)", file: file, line: line)
    }
  }
}
