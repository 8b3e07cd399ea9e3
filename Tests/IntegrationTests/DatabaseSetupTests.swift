import Foundation
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 3.3 without a bastion (issue 17, part 2): the ecs step creates the databases with a
/// one-off Fargate task before any service, against the real aws CLI and the emulator (which runs
/// a task to STOPPED, exit 0, over successive describe-tasks). A failing task comes from a
/// wrapper of `aws` (Tests/Fixtures/bin-onetask): the emulator never fails one.
extension ECRECSLambdaStepTests {
  /// The calls of one aws operation in a shim log, in order, with their index in the log.
  private func indices(_ operation: String, _ calls: [[String: Any]]) -> [Int] {
    let words = operation.split(separator: " ").map(String.init)
    return calls.enumerated().compactMap { index, call in
      Array((call["argv"] as? [String] ?? []).prefix(words.count)) == words ? index : nil
    }
  }

  /// The environment that puts the failing one-off task wrapper (Tests/Fixtures/bin-onetask) in
  /// front of aws, its calls logged to `log`; the caller adds which tasks fail.
  func oneOffTaskWrapper(_ workspace: Workspace, log: String) -> [String: String] {
    [
      "RUNBOOK_AWS_LOG": log,
      "PATH": repositoryRoot.appendingPathComponent("Tests/Fixtures/bin-onetask").path + ":"
        + Workspace.shimmedPath,
      "RUNBOOK_FAIL_TASK_STATE": workspace.directory.appendingPathComponent("failed-tasks").path,
    ]
  }

  /// The one-off tasks of the setup task's family in the cluster.
  private func databaseTasks(_ workspace: Workspace, _ names: ResourceNames) async throws
    -> [String]
  {
    let cluster = try XCTUnwrap(try workspace.checkpoint().exports["CLUSTER_ARN"])
    let listed = try await awsJSON(
      workspace.endpoint,
      ["ecs", "list-tasks", "--cluster", cluster, "--family", "\(names.prefix)-db-setup"])
    return listed["taskArns"] as? [String] ?? []
  }

  /// A kill right after `run-task`, before the task's ARN is recorded: the next run finds the
  /// task by its `startedBy` and follows it, runs no second one, and creates the services only
  /// after it stopped with exit 0. The master credentials are container secrets, on no command line.
  func testDatabaseTaskRunsOnceBeforeAnyServiceThoughKilledAfterRunTask() async throws {
    let names = ResourceNames.other("db" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let killed = try await workspace.run(
      ["run", "ecr", "ecs", "--yes"],
      environment: [
        "RUNBOOK_AWS_LOG": log, "RUNBOOK_KILL_MATCH": "^ecs run-task",
        "RUNBOOK_KILL_MATCH_COUNTER": workspace.directory.appendingPathComponent("kills").path,
      ])
    XCTAssertTrue(killed.signaled && killed.status == SIGKILL, killed.summary)
    XCTAssertNil(try workspace.checkpoint().exports["DB_SETUP_TASK"], "killed before the record")
    XCTAssertEqual(indices("ecs create-service", loggedAWSCalls(log)), [], "no service yet")

    let resumed = try await workspace.run(
      ["run", "ecr", "ecs", "--yes"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    XCTAssertTrue(resumed.stdout.contains("an interrupted run started"), resumed.stdout)
    let calls = loggedAWSCalls(log)
    XCTAssertEqual(indices("ecs run-task", calls).count, 1, "one database task")
    let tasks = try await databaseTasks(workspace, names)
    XCTAssertEqual(tasks.count, 1, "\(tasks)")
    let exports = try workspace.checkpoint().exports
    XCTAssertEqual(
      exports["DB_SETUP_TASK"]?.split(separator: " ").last.map(String.init), tasks.first)
    // Every service is created after the last look at the task (it had stopped, exit 0).
    let services = indices("ecs create-service", calls)
    XCTAssertEqual(services.count, 4)
    XCTAssertGreaterThan(
      services.min() ?? -1, indices("ecs describe-tasks", calls).max() ?? Int.max,
      "a service was created before the database task stopped")

    // The credentials: references to the RDS secret's JSON keys, the value nowhere.
    let secret = try XCTUnwrap(exports["RDS_SECRET_ARN"])
    let definition = try await awsJSON(
      workspace.endpoint,
      ["ecs", "describe-task-definition", "--task-definition", "\(names.prefix)-db-setup"])
    let container = try XCTUnwrap(
      ((definition["taskDefinition"] as? [String: Any])?["containerDefinitions"]
        as? [[String: Any]])?.first)
    let secrets = (container["secrets"] as? [[String: String]] ?? []).reduce(into: [:]) {
      $0[$1["name"] ?? "?"] = $1["valueFrom"]
    }
    XCTAssertEqual(secrets["DB_MASTER_USER"], secret + ":username::")
    XCTAssertEqual(secrets["MYSQL_PWD"], secret + ":password::")
    XCTAssertEqual(secrets.count, 5, "the master's two keys and the three users' passwords")
    let value = try await awsJSON(
      workspace.endpoint, ["secretsmanager", "get-secret-value", "--secret-id", secret])
    let password = try XCTUnwrap(
      (JSONValue(parsing: value["SecretString"] as? String ?? "")?["password"])?.stringValue)
    for call in calls {
      XCTAssertFalse(
        (call["argv"] as? [String] ?? []).joined(separator: " ").contains(password),
        "the master password on a command line")
    }
    let text = try JSONSerialization.data(withJSONObject: definition)
    XCTAssertFalse(String(decoding: text, as: UTF8.self).contains(password))

    // The services' own users: their passwords reach the database task as container secrets,
    // on no command line (run-task carries no overrides) and in no task definition.
    let users = ["user-service", "course-service", "schedule-service"]
    var userSecrets: [String: String] = [:]
    for service in users {
      let suffix = service.uppercased().replacingOccurrences(of: "-", with: "_")
      let arn = try XCTUnwrap(exports["DB_PASSWORD_SECRET_ARN_\(suffix)"])
      XCTAssertEqual(secrets["DB_PASSWORD_\(suffix)"], arn)
      let value = try await awsJSON(
        workspace.endpoint, ["secretsmanager", "get-secret-value", "--secret-id", arn])
      let userPassword = try XCTUnwrap(value["SecretString"] as? String)
      XCTAssertEqual(userPassword.count, 32)
      userSecrets[arn] = userPassword
      XCTAssertFalse(String(decoding: text, as: UTF8.self).contains(userPassword))
      for call in calls {
        XCTAssertFalse(
          (call["argv"] as? [String] ?? []).joined(separator: " ").contains(userPassword),
          "a service user's password on a command line")
      }
    }
    let command = (container["command"] as? [String] ?? []).joined()
    XCTAssertTrue(
      command.contains(
        "CREATE USER IF NOT EXISTS 'user_service'@'%' IDENTIFIED BY '$DB_PASSWORD_USER_SERVICE'"),
      command)
    XCTAssertTrue(
      command.contains("GRANT ALL PRIVILEGES ON user_db.* TO 'user_service'@'%'"), command)
    for call in calls where (call["argv"] as? [String] ?? []).starts(with: ["ecs", "run-task"]) {
      XCTAssertFalse((call["argv"] as? [String] ?? []).contains("--overrides"))
    }

    // RDS rotates the master secret (a new value): nothing the services use changes. Their task
    // definitions read only their own users' secrets, whose values stay as they were.
    _ = try await awsJSON(
      workspace.endpoint,
      [
        "secretsmanager", "put-secret-value", "--secret-id", secret, "--secret-string",
        #"{"username":"admin","password":"rotated-\#(UUID().uuidString)"}"#,
      ])
    let cluster = try XCTUnwrap(exports["CLUSTER_ARN"])
    let described = try await awsJSON(
      workspace.endpoint, ["ecs", "describe-services", "--cluster", cluster, "--services"] + users)
    for service in described["services"] as? [[String: Any]] ?? [] {
      let arn = try XCTUnwrap(service["taskDefinition"] as? String)
      let definition = try await awsJSON(
        workspace.endpoint, ["ecs", "describe-task-definition", "--task-definition", arn])
      let text = String(
        decoding: try JSONSerialization.data(withJSONObject: definition), as: UTF8.self)
      XCTAssertFalse(text.contains(secret), "\(arn) reads the master secret")
      let container = try XCTUnwrap(
        ((definition["taskDefinition"] as? [String: Any])?["containerDefinitions"]
          as? [[String: Any]])?.first)
      for reference in container["secrets"] as? [[String: String]] ?? [] {
        guard let from = reference["valueFrom"], let before = userSecrets[from] else { continue }
        let now = try await awsJSON(
          workspace.endpoint, ["secretsmanager", "get-secret-value", "--secret-id", from])
        XCTAssertEqual(now["SecretString"] as? String, before, "\(from) changed with the master")
      }
    }
    XCTAssertEqual(described["services"].map { ($0 as? [Any])?.count }, 3)

    // A rerun: nothing to do, no second task.
    let rerun = try await workspace.runLogged(["run", "ecs", "--yes"])
    XCTAssertEqual(rerun.run.status, 0, rerun.run.summary)
    XCTAssertEqual(rerun.calls.count, 0)
  }

  /// A database task whose container exits 1: the step fails with the stopped reason and the
  /// task's log lines, and creates no service. The next run knows that task failed: it runs a new
  /// one, and then the services.
  func testFailedDatabaseTaskStopsTheStepBeforeAnyService() async throws {
    let names = ResourceNames.other("dbf" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let wrapper = oneOffTaskWrapper(workspace, log: log)
    let failing = try await workspace.run(
      ["run", "ecr", "ecs", "--yes"],
      environment: wrapper.merging([
        "RUNBOOK_FAIL_TASK_DEFINITION": "task-definition/\(names.prefix)-db-setup:",
        "RUNBOOK_FAIL_TASK_LOG":
          "ERROR 2003 (HY000): Can't connect to MySQL server on 'db' (110)|second line",
      ]) { $1 })
    XCTAssertEqual(failing.status, 1, failing.summary)
    XCTAssertTrue(
      failing.stderr.contains("exit 1 (Essential container in task exited)"), failing.stderr)
    XCTAssertTrue(failing.stderr.contains("no service was created"), failing.stderr)
    XCTAssertTrue(
      failing.stdout.contains("| ERROR 2003 (HY000): Can't connect to MySQL server"),
      failing.stdout)
    XCTAssertEqual(indices("ecs create-service", loggedAWSCalls(log)), [])
    XCTAssertEqual(indices("ecs run-task", loggedAWSCalls(log)).count, 1)

    // The first task stays failed (a stopped task does); new ones exit 0.
    let again = try await workspace.run(
      ["run", "ecr", "ecs", "--yes"],
      environment: wrapper.merging(["RUNBOOK_FAIL_TASK_DEFINITION": "^$"]) { $1 })
    XCTAssertEqual(again.status, 0, again.summary)
    XCTAssertTrue(again.stdout.contains("failed: exit 1"), again.stdout)
    let calls = loggedAWSCalls(log)
    XCTAssertEqual(indices("ecs run-task", calls).count, 2, "a second task, the first failed")
    XCTAssertEqual(indices("ecs create-service", calls).count, 4)
    let tasks = try await databaseTasks(workspace, names)
    XCTAssertEqual(tasks.count, 2, "\(tasks)")
  }
}
