import Foundation
import RunbookState
import XCTest

/// The task role's writes in the crash chain: a kill right after `create-role` of the task role
/// (before the checkpoint knows it) and right after its `delete-role` in destroy; each next run
/// resumes to exactly one role, then none.
extension ECRECSLambdaStepTests {
  func testKilledAfterTheTaskRoleIsCreatedAndDeletedResumesToOneRoleThenNone() async throws {
    let names = ResourceNames.other("role" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let created = try await workspace.runInterrupted(
      ["run", "ecr", "ecs", "--yes"], at: [],
      waits: [
        WaitKill(
          name: "task role created", pattern: "iam create-role --role-name \(names.taskRole) ")
      ])
    XCTAssertEqual(created.waitsMissed, [], "the run never created the task role")
    // With RUNBOOK_CRASH_ALL=1 (make crash-all) every write is a kill point too.
    XCTAssertEqual(
      created.interruptions.filter {
        if case .wait("task role created") = $0.point { return true } else { return false }
      }.count, 1, "\(created.interruptions)")
    if !crashAll {
      XCTAssertEqual(created.interruptions.count, 1, "\(created.interruptions)")
    }
    let finished = try XCTUnwrap(created.finished, "no run finished")
    XCTAssertEqual(finished.status, 0, finished.summary)
    let checkpoint = try workspace.checkpoint()
    // The role the killed run made is found by this deployment's lineage tag, not made again.
    XCTAssertEqual(checkpoint.record("ecs", "task-role")?.outcome, .recovered)
    let roles = try await taskRoles(workspace, names)
    XCTAssertEqual(roles.count, 1, "\(roles)")
    XCTAssertEqual(roles.first, checkpoint.exports["TASK_ROLE_ARN"])

    let deleted = try await workspace.runInterrupted(
      ["destroy", "ecs", "--yes", "--force"], at: [],
      waits: [
        WaitKill(
          name: "task role deleted", pattern: "iam delete-role --role-name \(names.taskRole)")
      ])
    XCTAssertEqual(deleted.waitsMissed, [], "destroy never deleted the task role")
    let gone = try XCTUnwrap(deleted.finished, "no destroy finished")
    XCTAssertEqual(gone.status, 0, gone.summary)
    let left = try await taskRoles(workspace, names)
    XCTAssertEqual(left, [], "the task role survived destroy")
    XCTAssertNil(try workspace.checkpoint().record("ecs", "task-role"), "ecs is forgotten")
  }

  /// The ARNs of the roles named like the task role.
  private func taskRoles(_ workspace: Workspace, _ names: ResourceNames) async throws -> [String] {
    let listed = try await workspace.aws(["iam", "list-roles"]) as? [String: Any]
    return (listed?["Roles"] as? [[String: Any]] ?? []).filter {
      $0["RoleName"] as? String == names.taskRole
    }.compactMap { $0["Arn"] as? String }
  }
}
