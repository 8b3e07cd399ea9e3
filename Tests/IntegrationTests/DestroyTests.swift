import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// `runbook destroy` against the real aws CLI and the emulator (part of ``DayTwoTests``).
extension DayTwoTests {
  static let lambdaRole = "unisync-lambda-execution-role"
  /// Write calls of `destroy` of the deployment of ``DayTwoTests`` (measured: 69 over a chain of
  /// 5 kills, each of which may make the run after it repeat the delete it interrupted).
  static let destroyWrites = 73

  /// After the full deployment (with a VPC taken over with `--adopt` and the Lambda role existing
  /// before the run), verify and update: `destroy --yes --force` is killed right after 5 sampled
  /// deletes (every delete with `RUNBOOK_CRASH_ALL=1`), run again after each kill: it finishes
  /// without an error, nothing tagged with the deployment is left (task
  /// definition revisions the update registered included), the adopted VPC and the role that
  /// existed survive, and the checkpoint no longer knows any step.
  func checkDestroy(_ workspace: Workspace, adoptedVPC: String) async throws {
    let before = try workspace.checkpoint()
    XCTAssertEqual(before.exports["VPC_ID"], adoptedVPC)
    XCTAssertEqual(before.record("network", "vpc")?.outcome, .adopted)
    XCTAssertEqual(before.record("lambda", "role")?.outcome, .alreadyDone)

    // Killed right after sampled deletes (every delete with RUNBOOK_CRASH_ALL=1), run again
    // after each kill.
    var first: ToolRun?
    let log = workspace.directory.appendingPathComponent("destroy-calls.log").path
    let chain = try await workspace.runInterrupted(
      ["destroy", "--yes", "--force"], at: sampledWrites(5, of: Self.destroyWrites),
      environment: ["RUNBOOK_AWS_LOG": log]
    ) { interruption in
      if first == nil { first = interruption.run }
      XCTAssertFalse(try workspace.checkpoint().actions.isEmpty, "the kill came before the end")
    }
    XCTAssertEqual(chain.missed, [], "sampled deletes never reached (destroy made \(chain.writes))")
    if crashAll {
      // Every write was a kill point, but those passed over after a write killed twice.
      XCTAssertEqual(
        chain.interruptions.count + chain.skipped.count, chain.writes,
        "\(chain.interruptions), skipped \(chain.skipped)")
    } else {
      XCTAssertEqual(chain.interruptions.count, 5, "\(chain.interruptions)")
    }
    // A run after a kill goes on from the first revision still active: none is deregistered twice.
    let deregistered = calls("ecs deregister-task-definition", in: log).compactMap { call in
      call.argv.firstIndex(of: "--task-definition").map { call.argv[$0 + 1] }
    }
    XCTAssertFalse(deregistered.isEmpty, "the destroy chain deregistered no task definition")
    XCTAssertEqual(
      deregistered.count, Set(deregistered).count, "a revision deregistered twice: \(deregistered)")
    report(
      "destroy chain: \(chain.interruptions.count) kills, \(chain.writes) writes"
        + " (\(deregistered.count) deregistrations, passed over: \(chain.skipped)): "
        + chain.interruptions.map(\.description).joined(separator: ", "))
    let killed = try XCTUnwrap(first)
    // The list shown first says what stays, and why.
    XCTAssertTrue(
      killed.stdout.contains(
        "= delete-role: delete IAM role \(Self.lambdaRole) (kept: it existed already"),
      killed.stdout)
    XCTAssertTrue(
      killed.stdout.contains(
        "= delete-vpc: delete VPC unisync-vpc (kept: adopted (--adopt), not created by this deployment)"
      ),
      killed.stdout)

    let finished = try XCTUnwrap(chain.finished)

    XCTAssertEqual(finished.status, 0, finished.summary)
    XCTAssertTrue(
      finished.stdout.contains("nothing tagged runbook:deployment=unisync is left"), finished.stdout
    )

    let inventory = try await Self.inventory(workspace)
    XCTAssertEqual(inventory.left, [:], "still there after destroy")
    XCTAssertEqual(inventory.vpcs, [adoptedVPC], "the adopted VPC survives")
    XCTAssertEqual(inventory.roles, [Self.lambdaRole], "the role that existed survives")
    XCTAssertEqual(
      inventory.secretsPendingDeletion.sorted(),
      [
        "unisync/canvas-api-token", "unisync/cognito-config", "unisync/db-course-service",
        "unisync/db-schedule-service", "unisync/db-user-service", "unisync/encryption-key",
      ],
      "secrets wait out their recovery window (the services' database passwords too)")
    let after = try workspace.checkpoint()
    // (The scan's own record stays: it is no step's.)
    XCTAssertEqual(
      after.actions.keys.filter { !$0.hasPrefix("leftovers/") }, [], "every step is forgotten")
    XCTAssertEqual(after.exports, [:])
  }

  /// What of the deployment exists, kind by kind (deleted and inactive things excluded), asked
  /// of each service directly; plus the VPCs and roles there are, and the secrets waiting to go.
  static func inventory(_ workspace: Workspace) async throws
    -> (left: [String: [String]], vpcs: [String], roles: [String], secretsPendingDeletion: [String])
  {
    func list(_ arguments: [String], _ key: String) async throws -> [[String: Any]] {
      (try await workspace.aws(arguments) as? [String: Any])?[key] as? [[String: Any]] ?? []
    }
    func strings(_ arguments: [String], _ key: String) async throws -> [String] {
      (try await workspace.aws(arguments) as? [String: Any])?[key] as? [String] ?? []
    }
    let owned = #"[{"Name":"tag:runbook:deployment","Values":["unisync"]}]"#
    var left: [String: [String]] = [:]
    func note(_ kind: String, _ items: [String]) { if !items.isEmpty { left[kind] = items } }
    note(
      "vpc",
      try await list(["ec2", "describe-vpcs", "--filters", owned], "Vpcs").compactMap {
        $0["VpcId"] as? String
      })
    note(
      "subnet",
      try await list(["ec2", "describe-subnets", "--filters", owned], "Subnets").compactMap {
        $0["SubnetId"] as? String
      })
    note(
      "internet-gateway",
      try await list(["ec2", "describe-internet-gateways", "--filters", owned], "InternetGateways")
        .compactMap {
          $0["InternetGatewayId"] as? String
        })
    note(
      "elastic-ip",
      try await list(["ec2", "describe-addresses", "--filters", owned], "Addresses").compactMap {
        $0["AllocationId"] as? String
      })
    note(
      "nat-gateway",
      try await list(["ec2", "describe-nat-gateways", "--filter", owned], "NatGateways")
        .filter { !["deleted", "deleting"].contains($0["State"] as? String ?? "") }.compactMap {
          $0["NatGatewayId"] as? String
        })
    note(
      "route-table",
      try await list(["ec2", "describe-route-tables", "--filters", owned], "RouteTables").compactMap
      { $0["RouteTableId"] as? String })
    note(
      "security-group",
      try await list(["ec2", "describe-security-groups", "--filters", owned], "SecurityGroups")
        .compactMap { $0["GroupId"] as? String })
    note(
      "cloud-map-namespace",
      try await list(["servicediscovery", "list-namespaces"], "Namespaces").compactMap {
        $0["Name"] as? String
      })
    note(
      "cloud-map-service",
      try await list(["servicediscovery", "list-services"], "Services").compactMap {
        $0["Name"] as? String
      })
    note(
      "db-instance",
      try await list(["rds", "describe-db-instances"], "DBInstances").compactMap {
        $0["DBInstanceIdentifier"] as? String
      })
    note(
      "db-subnet-group",
      try await list(["rds", "describe-db-subnet-groups"], "DBSubnetGroups").compactMap {
        $0["DBSubnetGroupName"] as? String
      })
    note(
      "secret",
      try await list(["secretsmanager", "list-secrets"], "SecretList").compactMap {
        $0["Name"] as? String
      })
    note(
      "ecr",
      try await list(["ecr", "describe-repositories"], "repositories").compactMap {
        $0["repositoryName"] as? String
      })
    let clusters = try await strings(["ecs", "list-clusters"], "clusterArns")
    if !clusters.isEmpty {
      note(
        "cluster",
        try await list(["ecs", "describe-clusters", "--clusters"] + clusters, "clusters")
          .filter { $0["status"] as? String == "ACTIVE" }.compactMap {
            $0["clusterName"] as? String
          })
    }
    note(
      "task-definition",
      try await strings(
        ["ecs", "list-task-definitions", "--status", "ACTIVE"], "taskDefinitionArns"))
    note(
      "load-balancer",
      try await list(["elbv2", "describe-load-balancers"], "LoadBalancers").compactMap {
        $0["LoadBalancerName"] as? String
      })
    note(
      "target-group",
      try await list(["elbv2", "describe-target-groups"], "TargetGroups").compactMap {
        $0["TargetGroupName"] as? String
      })
    note(
      "log-group",
      try await list(
        ["logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/"], "logGroups"
      ).compactMap { $0["logGroupName"] as? String })
    note(
      "function",
      try await list(["lambda", "list-functions"], "Functions").compactMap {
        $0["FunctionName"] as? String
      })
    note("queue", try await strings(["sqs", "list-queues"], "QueueUrls"))
    let roles = try await list(["iam", "list-roles"], "Roles").compactMap {
      $0["RoleName"] as? String
    }
    .filter { ["ecsTaskExecutionRole", "unisync-ecs-task-role", lambdaRole].contains($0) }
    let vpcs = try await list(
      ["ec2", "describe-vpcs", "--filters", #"[{"Name":"tag:Name","Values":["unisync-vpc"]}]"#],
      "Vpcs"
    )
    .compactMap { $0["VpcId"] as? String }
    let pending = try await list(
      ["secretsmanager", "list-secrets", "--include-planned-deletion"], "SecretList"
    )
    .filter { $0["DeletedDate"] != nil }.compactMap { $0["Name"] as? String }
    return (left, vpcs, roles.sorted(), pending)
  }
}
