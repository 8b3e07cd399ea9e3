import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// `services[].migration` (issue 17, part 4): read and checked like every setting.
extension ConfigurationTests {
  func testMigrationIsANonEmptyArrayOfNonEmptyStrings() throws {
    try assertProblems(
      { edit(&$0, ["services", 1, "migration"]) { $0 = "java -jar app.jar" } },
      [
        "services[1].migration: must be a non-empty array of strings (the command and its arguments), not a string"
      ])
    try assertProblems(
      { edit(&$0, ["services", 1, "migration"]) { $0 = [String]() } },
      [
        "services[1].migration: must be a non-empty array of strings (the command and its arguments), not an empty array"
      ])
    try assertProblems(
      { edit(&$0, ["services", 2, "migration"]) { $0 = ["java", ""] } },
      ["services[2].migration[1]: must not be an empty string"])
    try assertProblems(
      { edit(&$0, ["services", 0, "migration"]) { $0 = ["java", 7] } },
      ["services[0].migration[1]: must be a string, not a number"])
    // Unset by default; given, it is the argv as written.
    XCTAssertTrue(try localDeployment().services.allSatisfy { $0.migration == nil })
  }

  func testAMigrationIsReadAsItsArgv() throws {
    let path = try editedConfiguration {
      edit(&$0, ["services", 1, "migration"]) {
        $0 = ["java", "-jar", "app.jar", "--spring.profiles.active=migrate"]
      }
    }
    let deployment = try Deployment.load(from: path)
    XCTAssertEqual(
      deployment.services.first { $0.name == "user-service" }?.migration,
      ["java", "-jar", "app.jar", "--spring.profiles.active=migrate"])
    XCTAssertEqual(deployment.services.compactMap(\.migration).count, 1)
  }
}

/// What `plan update` shows of a migration.
extension UpdateStepTests {
  func migrating(_ services: [String] = []) throws -> Deployment {
    var deployment = try deployment(services: services)
    for index in deployment.services.indices where deployment.services[index].name == "user-service"
    {
      deployment.services[index].migration = ["java", "-jar", "app.jar", "--migrate"]
    }
    return deployment
  }

  func rolloutOutline(_ deployment: Deployment) throws -> [String] {
    let rollout = try XCTUnwrap(UpdateStep().actions(for: deployment).last?.procedure)
    let resolver = Resolver(aws: AWSSettings(region: deployment.region), secrets: SecretStore())
    return resolver.display(rollout.outline, values: [ContextValue.region: deployment.region])
      .split(separator: "\n").map(String.init)
  }

  func testPlanShowsTheMigrationTaskOfTheNewRevisionBeforeUpdateService() throws {
    let lines = try rolloutOutline(try migrating())
    let run = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("aws ecs run-task") }, "\(lines)")
    let update = try XCTUnwrap(
      lines.firstIndex { $0.hasPrefix("aws ecs update-service") }, "\(lines)")
    XCTAssertLessThan(run, update, "\(lines)")
    XCTAssertEqual(
      lines.filter { $0.hasPrefix("aws ecs run-task") }.count, 1, "one service migrates")
    let task = lines[run]
    XCTAssertTrue(task.contains("--task-definition <NEW_TASK_DEFINITION>"), task)
    XCTAssertTrue(
      task.contains(
        #""subnets":["<SUBNET_PRIVATE_2A>","<SUBNET_PRIVATE_2C>"],"securityGroups":["<ECS_SG>"]"#),
      task)
    XCTAssertTrue(
      task.contains(
        #"{"containerOverrides":[{"name":"user-service","command":["java","-jar","app.jar","--migrate"]}]}"#
      ), task)
    XCTAssertTrue(task.contains("--started-by <STARTED_BY>"), task)
    XCTAssertTrue(
      lines[..<run].contains {
        $0.contains("before any service is updated, the migration of user-service")
      },
      "\(lines)")
    XCTAssertTrue(
      lines.contains {
        $0.hasPrefix("aws logs get-log-events --log-group-name /ecs/unisync-user-service")
      },
      "\(lines)")
    // The rollout needs what the task runs in.
    XCTAssertEqual(
      Set(UpdateStep().actions(for: try migrating()).last?.procedure?.requires ?? []),
      ["CLUSTER_ARN", "ECS_SG", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C"])
  }

  func testNoMigrationNoTaskInThePlan() throws {
    // Without a migration, or when only other services are updated, or for a rollback.
    var rollback = try migrating()
    rollback.imageTag = nil
    rollback.request = RunRequest(services: [], rollback: true)
    for deployment in [try deployment(), try migrating(["course-service"]), rollback] {
      let lines = try rolloutOutline(deployment)
      XCTAssertFalse(lines.contains { $0.contains("run-task") }, "\(lines)")
      XCTAssertEqual(
        UpdateStep().actions(for: deployment).last?.procedure?.requires, ["CLUSTER_ARN"])
    }
  }
}
