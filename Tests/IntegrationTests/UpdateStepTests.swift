import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 10 against the real aws CLI, the emulator, a Docker engine and a registry (part of
/// ``DayTwoTests``).
///
/// Under the strict layer each rollout is a new deployment, IN_PROGRESS until its tasks have
/// started, then COMPLETED (`ecs-service-starting`); nothing ever fails one, so the
/// failing rollout comes from a wrapper of `aws` (Tests/Fixtures/bin-rollout) that reports the
/// new deployment FAILED the way ECS's circuit breaker does; the service itself really moves in
/// the emulator, and back.
extension DayTwoTests {
  static let services = ["api-gateway", "user-service", "course-service", "schedule-service"]

  /// `run update --tag v2`: each service's new revision differs from the previous one only in the
  /// image, the service points at it, the registry holds the tag; the same update again registers
  /// nothing; a rollout that fails goes back to the recorded task definition (exit 1); and
  /// `--rollback` goes back on request.
  func checkUpdate(_ workspace: Workspace) async throws {
    let registry = try DockerEnvironment.registry()
    let original = try workspace.checkpoint().exports

    // run update --tag v2: a new revision per service, differing from the previous one only in
    // the image; the service points at it; the registry holds the tag.
    let first = try await workspace.runLogged(["run", "update", "--tag", "v2", "--yes"])
    XCTAssertEqual(first.run.status, 0, first.run.summary)
    var exports = try workspace.checkpoint().exports
    for service in Self.services {
      let suffix = service.uppercased().replacingOccurrences(of: "-", with: "_")
      let previous = try XCTUnwrap(original["TASK_DEF_\(suffix)"])
      let current = try await serviceTaskDefinition(workspace, service)
      XCTAssertNotEqual(current, previous, service)
      XCTAssertEqual(exports["TASK_DEF_\(suffix)"], current, service)
      XCTAssertEqual(
        exports["ROLLBACK_TASK_DEF_\(suffix)"], previous, "the rollback target is recorded")
      let old = try await taskDefinition(workspace, previous)
      let new = try await taskDefinition(workspace, current)
      // Read-only fields apart, the new revision is the old one with another image.
      var expected = registrable(old)
      var containers = expected["containerDefinitions"] as? [[String: Any]] ?? []
      XCTAssertEqual(containers.count, 1)
      XCTAssertEqual(
        containers.first?["image"] as? String,
        "\(registry)/unisync/\(service):\(original["IMAGE_TAG"] ?? "?")")
      containers[0]["image"] = "\(registry)/unisync/\(service):v2"
      expected["containerDefinitions"] = containers
      XCTAssertEqual(try canonical(registrable(new)), try canonical(expected), service)
      XCTAssertNotEqual(try canonical(registrable(old)), try canonical(registrable(new)), service)
      let tags = try DockerEnvironment.get(
        "/v2/unisync/\(service)/tags/list", password: try await registryPassword(workspace))
      XCTAssertTrue(
        ((tags.body as? [String: Any])?["tags"] as? [String] ?? []).contains("v2"), "\(tags.body)")
      XCTAssertTrue(first.run.stdout.contains("[\(service)] update-service: "), first.run.stdout)
    }
    XCTAssertTrue(
      first.run.stdout.contains("service             result       task definition"),
      first.run.stdout)
    XCTAssertEqual(writes(first.calls, "register-task-definition"), 4)
    let revisions = try await activeRevisions(workspace)

    // The same update again registers nothing and moves no service.
    let second = try await workspace.runLogged(["run", "update", "--tag", "v2", "--yes"])
    XCTAssertEqual(second.run.status, 0, second.run.summary)
    XCTAssertEqual(writes(second.calls, "register-task-definition"), 0)
    XCTAssertEqual(writes(second.calls, "update-service"), 0)
    let revisionsAfter = try await activeRevisions(workspace)
    XCTAssertEqual(revisionsAfter, revisions)
    XCTAssertTrue(second.run.stdout.contains("unchanged"), second.run.stdout)

    // A rollout that fails: user-service goes back to the task definition recorded before it,
    // and the run fails naming the deployment and the reason.
    exports = try workspace.checkpoint().exports
    let v2 = try XCTUnwrap(exports["TASK_DEF_USER_SERVICE"])
    let revision = try XCTUnwrap(Int(v2.split(separator: ":").last ?? ""))
    let failing = try await workspace.run(
      ["run", "update", "--tag", "v3", "--service", "user-service", "--yes"],
      environment: [
        "PATH": repositoryRoot.appendingPathComponent("Tests/Fixtures/bin-rollout").path + ":"
          + Workspace.shimmedPath,
        "RUNBOOK_FAIL_TASK_DEFINITION": "task-definition/unisync-user-service:\(revision + 1)$",
      ])
    XCTAssertEqual(failing.status, 1, failing.summary)
    XCTAssertTrue(failing.stderr.contains("the update did not go through"), failing.stderr)
    XCTAssertNotNil(
      failing.stderr.range(
        of:
          #"user-service: deployment ecs-svc/[0-9]+ failed \(ECS deployment circuit breaker: tasks failed to start\.\); back on unisync-user-service:\#(revision)"#,
        options: .regularExpression), failing.stderr)
    XCTAssertTrue(
      failing.stdout.contains("event: (service user-service) failed to launch a task"),
      failing.stdout)
    XCTAssertTrue(failing.stdout.contains("rolled back"), failing.stdout)
    let afterFailure = try await serviceTaskDefinition(workspace, "user-service")
    XCTAssertEqual(afterFailure, v2, "the service ends on the recorded previous task definition")
    exports = try workspace.checkpoint().exports
    XCTAssertEqual(exports["ROLLBACK_TASK_DEF_USER_SERVICE"], v2)
    XCTAssertEqual(exports["TASK_DEF_USER_SERVICE"], v2)
    let gateway = try await serviceTaskDefinition(workspace, "api-gateway")
    XCTAssertEqual(gateway, exports["TASK_DEF_API_GATEWAY"])

    // run update --rollback: course-service goes back to what it ran before v2.
    let rollback = try await workspace.run([
      "run", "update", "--rollback", "--service", "course-service", "--yes",
    ])
    XCTAssertEqual(rollback.status, 0, rollback.summary)
    let course = try await serviceTaskDefinition(workspace, "course-service")
    XCTAssertEqual(course, original["TASK_DEF_COURSE_SERVICE"])
  }

  // MARK: - Helpers

  /// A task definition without the fields AWS adds to every revision.
  func registrable(_ definition: [String: Any]) -> [String: Any] {
    definition.filter {
      ![
        "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
        "registeredAt",
        "registeredBy", "deregisteredAt",
      ].contains($0.key)
    }
  }

  func canonical(_ object: [String: Any]) throws -> String {
    String(
      decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
      as: UTF8.self)
  }

  func serviceTaskDefinition(_ workspace: Workspace, _ service: String) async throws -> String {
    let described = try await workspace.aws([
      "ecs", "describe-services", "--cluster", "unisync-cluster", "--services", service,
    ])
    let services = (described as? [String: Any])?["services"] as? [[String: Any]] ?? []
    return try XCTUnwrap(services.first?["taskDefinition"] as? String)
  }

  func taskDefinition(_ workspace: Workspace, _ arn: String) async throws -> [String: Any] {
    let described = try await workspace.aws([
      "ecs", "describe-task-definition", "--task-definition", arn,
    ])
    return try XCTUnwrap((described as? [String: Any])?["taskDefinition"] as? [String: Any])
  }

  func activeRevisions(_ workspace: Workspace) async throws -> [String] {
    let listed = try await workspace.aws(["ecs", "list-task-definitions", "--status", "ACTIVE"])
    return ((listed as? [String: Any])?["taskDefinitionArns"] as? [String] ?? []).sorted()
  }

  func writes(_ calls: [[String: Any]], _ operation: String) -> Int {
    calls.filter {
      ($0["argv"] as? [String] ?? []).prefix(2) == ["ecs", operation] && $0["exit"] as? Int == 0
    }.count
  }

  func registryPassword(_ workspace: Workspace) async throws -> String {
    try await emulatorRegistryPassword(workspace.endpoint)
  }

}
