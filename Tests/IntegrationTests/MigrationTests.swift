import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Migrations gate a rollout, and `runbook task run` (issue 17, part 4), against the real aws CLI
/// and the emulator (which runs a task to STOPPED, exit 0, over successive describe-tasks). A
/// failing task comes from the wrapper of `aws` in Tests/Fixtures/bin-onetask: the emulator never
/// fails one.
extension ECRECSLambdaStepTests {
  static let migration = ["java", "-jar", "app.jar", "--spring.profiles.active=migrate"]

  /// The indices of the calls of one aws operation in a shim log.
  private func calls(_ operation: String, _ calls: [[String: Any]]) -> [Int] {
    let words = operation.split(separator: " ").map(String.init)
    return calls.enumerated().compactMap { index, call in
      Array((call["argv"] as? [String] ?? []).prefix(words.count)) == words ? index : nil
    }
  }

  private func argv(_ call: [String: Any]) -> [String] { call["argv"] as? [String] ?? [] }

  private func value(_ option: String, in argv: [String]) -> String? {
    argv.firstIndex(of: option).flatMap { argv.indices.contains($0 + 1) ? argv[$0 + 1] : nil }
  }

  /// A deployed ecr and ecs, then the user service given a migration in the configuration.
  private func deployedWithMigration(_ names: ResourceNames, name: String = #function)
    async throws -> Workspace
  {
    let workspace = try await seededWorkspace(names, name: name)
    let deployed = try await workspace.run(["run", "ecr", "ecs", "--yes"])
    XCTAssertEqual(deployed.status, 0, deployed.summary)
    var config =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: workspace.configPath))) as! [String: Any]
    config["services"] = (config["services"] as? [[String: Any]])?.map { service in
      var service = service
      if service["name"] as? String == "user-service" { service["migration"] = Self.migration }
      return service
    }
    try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
      .write(to: URL(fileURLWithPath: workspace.configPath))
    return workspace
  }

  private func stateBytes(_ workspace: Workspace) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: workspace.stateDirectory + "/state.json"))
  }

  /// `run update` with a migration runs exactly one task of the new revision, with the
  /// migration as its command, in the private subnets with the ECS group, before any
  /// `update-service`. Killed right after its `run-task`, the resumed update follows that task
  /// and starts none of its own. `task run` passes the emulator's exit 0 through and leaves the
  /// checkpoint as it was.
  func testMigrationRunsOnceWithTheNewRevisionBeforeAnyUpdateService() async throws {
    let names = ResourceNames.other("mg" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await deployedWithMigration(names)
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let exports = try workspace.checkpoint().exports

    let update = try await workspace.run(
      ["run", "update", "--tag", "v2", "--yes"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(update.status, 0, update.summary)
    var logged = loggedAWSCalls(log)
    let runs = calls("ecs run-task", logged)
    XCTAssertEqual(runs.count, 1, "one migration task")
    let updates = calls("ecs update-service", logged)
    XCTAssertEqual(updates.count, 4)
    let run = argv(logged[runs[0]])
    XCTAssertLessThan(runs[0], updates.min() ?? -1, "the migration ran after an update-service")
    // It stopped (exit 0) before the first update-service.
    XCTAssertLessThan(
      calls("ecs describe-tasks", logged).max() ?? Int.max, updates.min() ?? -1)
    let after = try workspace.checkpoint().exports
    let revision = try XCTUnwrap(after["TASK_DEF_USER_SERVICE"])
    XCTAssertNotEqual(revision, exports["TASK_DEF_USER_SERVICE"], "a new revision")
    XCTAssertEqual(value("--task-definition", in: run), revision, "the new revision's task")
    let overrides = try XCTUnwrap(value("--overrides", in: run))
    XCTAssertEqual(
      JSONValue(parsing: overrides),
      JSONValue(
        parsing:
          #"{"containerOverrides":[{"name":"user-service","command":["java","-jar","app.jar","--spring.profiles.active=migrate"]}]}"#
      ))
    let network = try XCTUnwrap(JSONValue(parsing: value("--network-configuration", in: run) ?? ""))
    XCTAssertEqual(
      network["awsvpcConfiguration"]?["subnets"]?.arrayValue?.compactMap(\.stringValue).sorted(),
      [after["SUBNET_PRIVATE_2A"] ?? "?", after["SUBNET_PRIVATE_2C"] ?? "?"].sorted())
    XCTAssertEqual(
      network["awsvpcConfiguration"]?["securityGroups"]?.arrayValue?.compactMap(\.stringValue),
      [after["ECS_SG"] ?? "?"])
    XCTAssertTrue(update.stdout.contains("migration done: exit 0"), update.stdout)
    XCTAssertEqual(
      after["MIGRATION_TASK_USER_SERVICE"]?.split(separator: " ").last, "ok", "its success kept")

    // Killed right after run-task of v3's migration: the resumed run follows that task.
    let killed = try await workspace.run(
      ["run", "update", "--tag", "v3", "--service", "user-service", "--yes"],
      environment: [
        "RUNBOOK_AWS_LOG": log, "RUNBOOK_KILL_MATCH": "^ecs run-task",
        "RUNBOOK_KILL_MATCH_COUNTER": workspace.directory.appendingPathComponent("kills").path,
      ])
    XCTAssertTrue(killed.signaled && killed.status == SIGKILL, killed.summary)
    logged = loggedAWSCalls(log)
    XCTAssertEqual(calls("ecs run-task", logged).count, 2)
    XCTAssertEqual(calls("ecs update-service", logged).count, 4, "nothing rolled after the kill")
    let resumed = try await workspace.run(
      ["run", "update", "--tag", "v3", "--service", "user-service", "--yes"],
      environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    XCTAssertTrue(resumed.stdout.contains("an interrupted run started"), resumed.stdout)
    logged = loggedAWSCalls(log)
    XCTAssertEqual(calls("ecs run-task", logged).count, 2, "no second migration task for v3")
    let v3 = try XCTUnwrap(try workspace.checkpoint().exports["TASK_DEF_USER_SERVICE"])
    XCTAssertEqual(
      value("--task-definition", in: argv(logged[calls("ecs run-task", logged)[1]])), v3)
    XCTAssertEqual(calls("ecs update-service", logged).count, 5)

    // Back to v2 and on to v3 again: v3's revision was migrated already, so no task runs.
    let rollback = try await workspace.run(
      ["run", "update", "--rollback", "--service", "user-service", "--yes"])
    XCTAssertEqual(rollback.status, 0, rollback.summary)
    let again = try await workspace.run(
      ["run", "update", "--tag", "v3", "--service", "user-service", "--yes"],
      environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(again.status, 0, again.summary)
    XCTAssertTrue(again.stdout.contains("ran this already and exited 0"), again.stdout)
    logged = loggedAWSCalls(log)
    XCTAssertEqual(calls("ecs run-task", logged).count, 2, "v3 migrated a second time")
    XCTAssertEqual(calls("ecs update-service", logged).count, 6)
    XCTAssertEqual(try workspace.checkpoint().exports["TASK_DEF_USER_SERVICE"], v3)

    // task run: the emulator's exit 0 is the tool's; the checkpoint is left as it was.
    let before = try stateBytes(workspace)
    let task = try await workspace.run(
      ["task", "run", "user-service", "--yes", "--", "sh", "-c", "echo hello"],
      environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(task.status, 0, task.summary)
    XCTAssertTrue(task.stdout.contains(": exit 0"), task.stdout)
    XCTAssertEqual(try stateBytes(workspace), before, "task run changed the checkpoint")
    logged = loggedAWSCalls(log)
    let taskRun = argv(logged[try XCTUnwrap(calls("ecs run-task", logged).last)])
    XCTAssertEqual(value("--task-definition", in: taskRun), v3, "the revision the service runs")
    XCTAssertTrue(
      (value("--overrides", in: taskRun) ?? "").contains(#""command":["sh","-c","echo hello"]"#))
    let history = try await workspace.run(["history"])
    XCTAssertTrue(history.stdout.contains("task run user-service"), history.stdout)
  }

  /// A migration whose task exits 1: the update fails (exit 1), prints the stopped reason and
  /// the task's log lines, and calls no update-service. `task run` of a command that exits 3
  /// exits 3, its log lines printed.
  func testFailedMigrationUpdatesNoServiceAndTaskRunPassesItsExitCode() async throws {
    let names = ResourceNames.other("mf" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await deployedWithMigration(names)
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let wrapper = oneOffTaskWrapper(workspace, log: log).merging([
      "RUNBOOK_FAIL_TASK_DEFINITION": "task-definition/\(names.prefix)-user-service:",
      "RUNBOOK_FAIL_TASK_LOG": "Flyway: migration V7__add_index failed|Caused by: duplicate key",
    ]) { $1 }
    let before = try workspace.checkpoint().exports
    let failing = try await workspace.run(
      ["run", "update", "--tag", "v2", "--yes"], environment: wrapper)
    XCTAssertEqual(failing.status, 1, failing.summary)
    XCTAssertTrue(
      failing.stderr.contains("the migration of user-service"), failing.stderr)
    XCTAssertTrue(
      failing.stderr.contains("exit 1 (Essential container in task exited)"), failing.stderr)
    XCTAssertTrue(failing.stderr.contains("No service was updated"), failing.stderr)
    XCTAssertTrue(
      failing.stdout.contains("| Flyway: migration V7__add_index failed"), failing.stdout)
    XCTAssertTrue(failing.stdout.contains("| Caused by: duplicate key"), failing.stdout)
    let logged = loggedAWSCalls(log)
    XCTAssertEqual(calls("ecs run-task", logged).count, 1)
    XCTAssertEqual(calls("ecs update-service", logged), [], "a service was rolled")
    let after = try workspace.checkpoint().exports
    for service in ["API_GATEWAY", "USER_SERVICE", "COURSE_SERVICE", "SCHEDULE_SERVICE"] {
      XCTAssertEqual(after["TASK_DEF_\(service)"], before["TASK_DEF_\(service)"], service)
      XCTAssertNil(after["ROLLBACK_TASK_DEF_\(service)"], service)
    }

    // task run of a command that exits 3 (the wrapper fails every user-service task).
    let state = try stateBytes(workspace)
    let task = try await workspace.run(
      ["task", "run", "user-service", "--yes", "--", "sh", "-c", "exit 3"],
      environment: wrapper.merging(["RUNBOOK_FAIL_TASK_EXIT_CODE": "3"]) { $1 })
    XCTAssertEqual(task.status, 3, task.summary)
    XCTAssertTrue(task.stdout.contains("| Caused by: duplicate key"), task.stdout)
    XCTAssertTrue(task.stdout.contains("exit 3 (Essential container in task exited)"), task.stdout)
    XCTAssertEqual(try stateBytes(workspace), state, "task run changed the checkpoint")

    // Bad input: an unknown service, no command: exit 2, nothing run.
    let unknown = try await workspace.run(["task", "run", "nope", "--yes", "--", "true"])
    XCTAssertEqual(unknown.status, 2, unknown.summary)
    XCTAssertTrue(unknown.stderr.contains("'nope' is not a service"), unknown.stderr)
    let empty = try await workspace.run(["task", "run", "user-service", "--yes"])
    XCTAssertEqual(empty.status, 2, empty.summary)
  }
}
