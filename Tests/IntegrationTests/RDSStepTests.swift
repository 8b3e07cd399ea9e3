import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 3 against the real aws CLI and the local emulator.
final class RDSStepTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// Runs the steps the rds step needs (guide 2.1 and 2.2).
  func runNetworkAndSecurity(_ workspace: Workspace) async throws {
    let earlier = try await workspace.run(["run", "network", "security", "--yes"])
    XCTAssertEqual(earlier.status, 0, earlier.summary)
  }

  /// The DB subnet groups and DB instances in the emulator, described by what the guide sets.
  func rdsInventory(_ workspace: Workspace) async throws -> (
    groups: [String], instances: [[String: Any]]
  ) {
    let groupResult = try await workspace.aws(["rds", "describe-db-subnet-groups"])
    let groups = ((groupResult as? [String: Any])?["DBSubnetGroups"] as? [[String: Any]] ?? []).map
    { group in
      let subnets = (group["Subnets"] as? [[String: Any]] ?? []).compactMap {
        $0["SubnetIdentifier"] as? String
      }.sorted()
      return
        "\(group["DBSubnetGroupName"] ?? "") vpc=\(group["VpcId"] ?? "") subnets=\(subnets.joined(separator: ","))"
    }
    let instanceResult = try await workspace.aws(["rds", "describe-db-instances"])
    let instances = (instanceResult as? [String: Any])?["DBInstances"] as? [[String: Any]] ?? []
    return (groups, instances)
  }

  /// Exactly one subnet group over the private subnets and one instance as the configuration says;
  /// RDS_ENDPOINT and RDS_SECRET_ARN name that instance's endpoint and master-password secret.
  func assertOneSubnetGroupAndOneInstance(
    _ workspace: Workspace, file: StaticString = #filePath, line: UInt = #line
  )
    async throws
  {
    let exports = try workspace.checkpoint().exports
    let (groups, instances) = try await rdsInventory(workspace)
    let privateSubnets = [exports["SUBNET_PRIVATE_2A"] ?? "-", exports["SUBNET_PRIVATE_2C"] ?? "-"]
      .sorted()
    XCTAssertEqual(
      groups,
      [
        "unisync-db-subnet-group vpc=\(exports["VPC_ID"] ?? "-") subnets=\(privateSubnets.joined(separator: ","))"
      ],
      file: file, line: line)
    XCTAssertEqual(instances.count, 1, "\(instances)", file: file, line: line)
    guard let instance = instances.first else { return }
    let expected: [String: String] = [
      "DBInstanceIdentifier": "unisync-mysql", "DBInstanceClass": "db.t3.micro", "Engine": "mysql",
      "EngineVersion": "8.4", "AllocatedStorage": "20", "MultiAZ": "1", "PubliclyAccessible": "0",
      "BackupRetentionPeriod": "7", "MasterUsername": "admin", "DBInstanceStatus": "available",
    ]
    for (key, value) in expected {
      XCTAssertEqual(instance[key].map { "\($0)" }, value, key, file: file, line: line)
    }
    XCTAssertEqual(
      (instance["DBSubnetGroup"] as? [String: Any])?["DBSubnetGroupName"] as? String,
      "unisync-db-subnet-group", file: file, line: line)
    let groupIds = (instance["VpcSecurityGroups"] as? [[String: Any]] ?? []).compactMap {
      $0["VpcSecurityGroupId"] as? String
    }
    XCTAssertEqual(groupIds, [exports["RDS_SG"] ?? "-"], file: file, line: line)
    XCTAssertEqual(
      (instance["Endpoint"] as? [String: Any])?["Address"] as? String, exports["RDS_ENDPOINT"],
      file: file, line: line)
    XCTAssertNotNil(exports["RDS_SECRET_ARN"], file: file, line: line)
    XCTAssertEqual(
      (instance["MasterUserSecret"] as? [String: Any])?["SecretArn"] as? String,
      exports["RDS_SECRET_ARN"], file: file, line: line)
  }

  /// Guide 3.3 by hand (`rds.databaseSetup.mode: manual`): the databases are the operator's.
  static func manualDatabases(_ config: inout [String: Any]) {
    var rds = config["rds"] as? [String: Any] ?? [:]
    rds["databaseSetup"] = ["mode": "manual"]
    config["rds"] = rds
  }

  func testRunCreatesSubnetGroupAndInstanceAndLeavesTheDatabasesToTheOperator() async throws {
    let workspace = try Workspace(configure: Self.manualDatabases)
    try await runNetworkAndSecurity(workspace)
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let run = try await workspace.run(
      ["run", "rds", "--yes"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(run.status, 0, run.summary)
    try await assertOneSubnetGroupAndOneInstance(workspace)

    let create = try XCTUnwrap(calls("rds create-db-instance", in: log).first)
    XCTAssertTrue(create.argv.contains("--manage-master-user-password"))
    XCTAssertFalse(
      create.argv.contains("--master-user-password"), "the tool never passes a password")
    XCTAssertEqual(loggedArgv(log).filter { $0.write }.count, 2, "one subnet group, one instance")

    // 3.3 is the operator's: the exact SQL and how to reach the instance, then pending.
    let exports = try workspace.checkpoint().exports
    let endpoint = try XCTUnwrap(exports["RDS_ENDPOINT"])
    let secret = try XCTUnwrap(exports["RDS_SECRET_ARN"])
    for database in ["user_db", "course_db", "schedule_db"] {
      XCTAssertTrue(
        run.stdout.contains(
          "CREATE DATABASE IF NOT EXISTS \(database) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        ),
        run.stdout)
    }
    XCTAssertTrue(run.stdout.contains("mysql -h \(endpoint) -P 3306 -u admin -p"), run.stdout)
    XCTAssertTrue(
      run.stdout.contains(
        "get-secret-value --region ap-northeast-2 --secret-id \(secret) --query SecretString"),
      run.stdout)
    let status = try await workspace.run(["status", "--json"])
    let document = try JSONDecoder().decode(
      StatusReport.Document.self, from: Data(status.stdout.utf8))
    XCTAssertEqual(document.pendingManual, ["rds/create-databases"])
    let rds = try XCTUnwrap(document.steps.first { $0.id == "rds" })
    let manual = try XCTUnwrap(rds.actions.first { $0.name == "create-databases" })
    XCTAssertEqual([manual.kind, manual.status], ["manual", "pending-manual"])
    let plan = try await workspace.run(["plan", "rds"])
    XCTAssertTrue(
      plan.stdout.contains("mysql -h \(endpoint) -P 3306"),
      "plan fills in the known endpoint:\n\(plan.stdout)")

    let rerunLog = workspace.directory.appendingPathComponent("aws-rerun.log").path
    let rerun = try await workspace.run(
      ["run", "rds", "--yes"], environment: ["RUNBOOK_AWS_LOG": rerunLog])
    XCTAssertEqual(rerun.status, 0, rerun.summary)
    XCTAssertEqual(loggedArgv(rerunLog).filter { $0.write }.count, 0, "a rerun wrote")
    XCTAssertTrue(rerun.stdout.contains("rds/create-databases"), rerun.stdout)

    // Without the checkpoint's records, the existing group is found before any create (the emulator
    // would silently replace it) and the existing instance is used as it is.
    let reset = try await workspace.run(["reset", "rds"])
    XCTAssertEqual(reset.status, 0, reset.summary)
    let againLog = workspace.directory.appendingPathComponent("aws-again.log").path
    let again = try await workspace.run(
      ["run", "rds", "--yes"], environment: ["RUNBOOK_AWS_LOG": againLog])
    XCTAssertEqual(again.status, 0, again.summary)
    XCTAssertEqual(
      calls("rds create-db-subnet-group", in: againLog).count, 0,
      "the subnet group was created again")
    XCTAssertEqual(
      calls("rds create-db-instance", in: againLog).map(\.exit), [255], "DBInstanceAlreadyExists")
    try await assertOneSubnetGroupAndOneInstance(workspace)
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.exports["RDS_ENDPOINT"], endpoint)
    XCTAssertEqual(checkpoint.exports["RDS_SECRET_ARN"], secret)
    XCTAssertEqual(checkpoint.record("rds", "instance")?.outcome, .alreadyDone)
    XCTAssertEqual(checkpoint.record("rds", "subnet-group")?.outcome, .alreadyDone)
  }

  func testRunBeforeNetworkStopsAndNamesTheStepToRunFirst() async throws {
    let workspace = try Workspace()
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let run = try await workspace.run(
      ["run", "rds", "--yes"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertTrue(run.stderr.contains("run 'runbook run network"), run.stderr)
    XCTAssertTrue(run.stderr.contains("SUBNET_PRIVATE_2A"), run.stderr)
    XCTAssertEqual(loggedArgv(log).count, 0, "aws was called")
  }

  /// Kills the tool right after each write of rds and secrets (subnet group, instance, three
  /// secrets), one per run: the resumed runs find each by lookup and create nothing twice.
  func testKilledAfterEveryWriteOfRDSAndSecretsResumesToOneOfEach() async throws {
    let workspace = try Workspace(configure: Self.manualDatabases)
    try await runNetworkAndSecurity(workspace)
    let supplied = SecretsStepTests.Supplied()
    let chain = try await runKillingAfterEachWrite(
      workspace, ["run", "rds", "secrets", "--yes"], environment: supplied.environment)
    let finished = try XCTUnwrap(chain.finished, "no run finished")
    XCTAssertEqual(finished.status, 0, finished.summary)
    XCTAssertEqual(chain.kills, 5, "every write action should have been interrupted once")

    try await assertOneSubnetGroupAndOneInstance(workspace)
    let secrets = try await SecretsStepTests.unisyncSecrets(workspace)
    // The guide's three: with 3.3 by hand the services use the master user, no secrets of their own.
    XCTAssertEqual(
      secrets, ["unisync/canvas-api-token", "unisync/cognito-config", "unisync/encryption-key"])
    let checkpoint = try workspace.checkpoint()
    for (export, name) in [
      ("ENCRYPTION_KEY_SECRET_ARN", "unisync/encryption-key"),
      ("CANVAS_TOKEN_SECRET_ARN", "unisync/canvas-api-token"),
      ("COGNITO_SECRET_ARN", "unisync/cognito-config"),
    ] {
      let arn = try await SecretsStepTests.arn(workspace, name)
      XCTAssertEqual(checkpoint.exports[export], arn, export)
    }
    let token = try await SecretsStepTests.value(workspace, "unisync/canvas-api-token")
    XCTAssertEqual(token, supplied.token)
    for key in [
      "rds/subnet-group", "rds/instance", "secrets/encryption-key", "secrets/canvas-api-token",
      "secrets/cognito-config",
    ] {
      XCTAssertEqual(checkpoint.actions[key]?.outcome, .recovered, key)
    }
    XCTAssertEqual(checkpoint.actions["rds/create-databases"]?.status, .pendingManual)
  }
}
