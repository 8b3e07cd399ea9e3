import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 2.2 against the real aws CLI and the local emulator.
///
/// The network step runs once for the class (it is the costly part): each test starts from a copy of
/// its checkpoint, after the security groups earlier tests left in the VPC are deleted. When the
/// emulator has lost that VPC (another suite reset it), the network step runs again.
final class SecurityStepTests: XCTestCase {
  /// The workspace the network step ran in, kept for the whole class.
  nonisolated(unsafe) private static var network: Workspace?

  override class func tearDown() { network = nil }

  /// One line per group of an uninterrupted run: its name and its ingress rules.
  static let expectedGroups = [
    "unisync-alb-sg: tcp 443 from 0.0.0.0/0; tcp 80 from 0.0.0.0/0",
    "unisync-ecs-sg: tcp 8080-8083 from unisync-alb-sg; tcp 8080-8083 from unisync-ecs-sg",
    "unisync-rds-sg: tcp 3306 from unisync-ecs-sg",
  ]
  static let exports = [
    "unisync-alb-sg": "ALB_SG", "unisync-ecs-sg": "ECS_SG", "unisync-rds-sg": "RDS_SG",
  ]

  func testRunCreatesEachGroupAndRuleOnceAndRerunMakesNoCall() async throws {
    let workspace = try await networkWorkspace()
    let (first, calls) = try await workspace.runLogged(["run", "security", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    // A rule's authorize may first be refused while EC2 does not see its new group yet (the
    // strict layer's eventual consistency), and is then retried: one accepted write each.
    let writes = calls.filter { $0["write"] as? Bool == true }
    XCTAssertEqual(
      writes.filter { $0["exit"] as? Int == 0 }.count, 8, "one write per group and rule")
    XCTAssertEqual(
      writes.filter { $0["exit"] as? Int != 0 }.compactMap { ($0["argv"] as? [String])?[1] }
        .filter { $0 != "authorize-security-group-ingress" }, [], "\(writes)")

    let groups = try await securityGroups(workspace)
    XCTAssertEqual(groups.map(\.line).sorted(), Self.expectedGroups)
    try assertExports(workspace, name: groups)
    for group in groups {
      XCTAssertEqual(group.tags["Name"], group.name)
      XCTAssertEqual(group.tags["runbook:deployment"], "unisync")
      XCTAssertEqual(group.tags["runbook:lineage"], try workspace.checkpoint().lineage)
      XCTAssertEqual(
        group.tags["runbook:action"], "security/\(group.name.dropFirst("unisync-".count))")
    }

    try await assertRerunCallsNothing(workspace, step: "security")
  }

  /// 4 of the step's 8 writes (every one with `make crash-all`) are interrupted once, right after
  /// AWS answered it.
  func testKilledAfterEveryWriteResumesToExactlyOneOfEach() async throws {
    let workspace = try await networkWorkspace()
    let log = workspace.directory.appendingPathComponent("chain-calls.log").path
    workspace.environment["RUNBOOK_AWS_LOG"] = log
    try await assertResumesAfterEveryKill(workspace, step: "security", writes: 8, sampled: 4)
    workspace.environment["RUNBOOK_AWS_LOG"] = nil

    let groups = try await securityGroups(workspace)
    XCTAssertEqual(groups.map(\.line).sorted(), Self.expectedGroups)
    try assertExports(workspace, name: groups)
    let outcomes = try workspace.checkpoint().actions.filter { $0.key.hasPrefix("security/") }
      .values.compactMap(\.outcome)
    // A kill right after a write AWS refused leaves nothing to find: under the strict layer an
    // authorize sent while EC2 does not see the new group yet answers InvalidGroup.NotFound (and
    // is retried). Each kill after a write AWS accepted is found again by the run after it.
    let refused = loggedArgv(log).filter { $0.write && $0.exit != 0 }
    XCTAssertEqual(
      refused.map { $0.argv.prefix(2).joined(separator: " ") }.filter {
        $0 != "ec2 authorize-security-group-ingress"
      }, [], "only an authorize of a new group may be refused")
    let recovered = outcomes.filter { $0 == .recovered }.count
    let kills = crashAll ? 8 : 4
    XCTAssertLessThanOrEqual(recovered, kills)
    XCTAssertGreaterThanOrEqual(
      recovered, kills - refused.count,
      "each resumed run should have found the earlier write (\(refused.count) refused)")
  }

  /// A group of the guide's name made by hand (no ownership tags) is not taken over without
  /// `--adopt`; with it, the group is used and the rule already in it counts as done.
  func testForeignGroupNeedsAdoptAndAnExistingRuleCountsAsDone() async throws {
    let workspace = try await networkWorkspace()
    let vpc = try XCTUnwrap(workspace.checkpoint().exports["VPC_ID"])
    let created = try await workspace.aws([
      "ec2", "create-security-group", "--group-name", "unisync-alb-sg", "--description",
      "made by hand",
      "--vpc-id", vpc,
    ])
    let handMade = try XCTUnwrap((created as? [String: Any])?["GroupId"] as? String)
    // A group made a moment ago may not be visible to EC2 yet (the strict layer answers
    // InvalidGroup.NotFound for a while, as EC2 does): the hand-made rule is retried.
    for attempt in 1...20 {
      do {
        _ = try await workspace.aws([
          "ec2", "authorize-security-group-ingress", "--group-id", handMade, "--protocol", "tcp",
          "--port", "80",
          "--cidr", "0.0.0.0/0",
        ])
        break
      } catch  where attempt < 20 && "\(error)".contains("InvalidGroup.NotFound") {
        try await Task.sleep(nanoseconds: 500_000_000)
      }
    }

    let refused = try await workspace.run(["run", "security", "--yes"])
    XCTAssertEqual(refused.status, 1, refused.summary)
    XCTAssertTrue(
      refused.stderr.contains("create security group unisync-alb-sg: it already exists"),
      refused.stderr)
    XCTAssertTrue(refused.stderr.contains("pass --adopt"), refused.stderr)
    let afterRefusal = try await securityGroups(workspace)
    XCTAssertEqual(afterRefusal.filter { $0.name == "unisync-alb-sg" }.map(\.id), [handMade])
    XCTAssertNil(try workspace.checkpoint().exports["ALB_SG"])

    let adopted = try await workspace.run(["run", "security", "--yes", "--adopt"])
    XCTAssertEqual(adopted.status, 0, adopted.summary)
    XCTAssertTrue(
      adopted.stdout.range(
        of: "adopted +security/alb-sg +ALB_SG=\(handMade)", options: .regularExpression) != nil,
      adopted.stdout)
    XCTAssertTrue(
      adopted.stdout.range(
        of: #"already done +security/alb-ingress-80"#, options: .regularExpression) != nil,
      adopted.stdout)
    let groups = try await securityGroups(workspace)
    XCTAssertEqual(groups.map(\.line).sorted(), Self.expectedGroups)
    try assertExports(workspace, name: groups)
  }

  func testOnEmptyCheckpointAsksForNetworkFirst() async throws {
    let workspace = try Workspace()
    let (run, calls) = try await workspace.runLogged(["run", "security", "--yes"])
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertTrue(run.stderr.contains("step 'security' needs VPC_ID"), run.stderr)
    XCTAssertTrue(run.stderr.contains("run 'runbook run network' first"), run.stderr)
    XCTAssertEqual(calls.count, 0)
  }

  // MARK: - Helpers

  /// A workspace whose checkpoint holds the finished network step, in a VPC without security groups
  /// (its `default` one excepted).
  func networkWorkspace(name: String = #function) async throws -> Workspace {
    let workspace = try Workspace(name: name)
    let network: Workspace
    if let existing = Self.network, let vpc = try existing.checkpoint().exports["VPC_ID"],
      (try? await existing.aws(["ec2", "describe-vpcs", "--vpc-ids", vpc])) != nil
    {
      network = existing
      try await deleteSecurityGroups(network)
    } else {
      try Emulator.reset()
      network = try Workspace(name: "network")
      let run = try await network.run(["run", "network", "--yes"])
      XCTAssertEqual(run.status, 0, run.summary)
      Self.network = network
    }
    try FileManager.default.createDirectory(
      atPath: workspace.stateDirectory, withIntermediateDirectories: true)
    for file in ["state.json", "journal.jsonl"] {
      try FileManager.default.copyItem(
        atPath: network.stateDirectory + "/" + file, toPath: workspace.stateDirectory + "/" + file)
    }
    return workspace
  }

  /// Deletes every group of the VPC but `default`; a group another one's rule references goes after it.
  func deleteSecurityGroups(_ workspace: Workspace) async throws {
    var remaining = try await securityGroups(workspace).map(\.id)
    for _ in 0..<3 where !remaining.isEmpty {
      var failed: [String] = []
      for id in remaining {
        if (try? await workspace.aws(["ec2", "delete-security-group", "--group-id", id])) == nil {
          failed.append(id)
        }
      }
      remaining = failed
    }
    XCTAssertEqual(remaining, [], "security groups left from an earlier test")
  }

  /// Each export names the group of its name.
  func assertExports(
    _ workspace: Workspace, name groups: [SecurityGroupState], file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let exports = try workspace.checkpoint().exports
    for (name, export) in Self.exports {
      let ids = groups.filter { $0.name == name }.map(\.id)
      XCTAssertEqual(ids.count, 1, name, file: file, line: line)
      XCTAssertEqual(exports[export], ids.first, export, file: file, line: line)
    }
  }
}

/// One security group as the emulator describes it.
struct SecurityGroupState {
  var id: String
  var name: String
  var tags: [String: String]
  /// `tcp 80 from 0.0.0.0/0`, `tcp 8080-8083 from unisync-alb-sg`, sorted.
  var rules: [String]
  var line: String { "\(name): \(rules.joined(separator: "; "))" }
}

/// The security groups of the checkpoint's VPC, its `default` group excepted.
func securityGroups(_ workspace: Workspace) async throws -> [SecurityGroupState] {
  let vpc = try XCTUnwrap(workspace.checkpoint().exports["VPC_ID"])
  let result = try await workspace.aws([
    "ec2", "describe-security-groups", "--filters", "Name=vpc-id,Values=\(vpc)",
  ])
  let groups = ((result as? [String: Any])?["SecurityGroups"] as? [[String: Any]] ?? [])
    .filter { $0["GroupName"] as? String != "default" }
  let names = Dictionary(
    groups.map { ($0["GroupId"] as? String ?? "?", $0["GroupName"] as? String ?? "?") },
    uniquingKeysWith: { $1 })
  return groups.map { group in
    var rules: [String] = []
    for permission in group["IpPermissions"] as? [[String: Any]] ?? [] {
      let from = permission["FromPort"] as? Int ?? -1
      let to = permission["ToPort"] as? Int ?? -1
      let ports =
        "\(permission["IpProtocol"] as? String ?? "?") "
        + (from == to ? "\(from)" : "\(from)-\(to)")
      for range in permission["IpRanges"] as? [[String: Any]] ?? [] {
        rules.append("\(ports) from \(range["CidrIp"] as? String ?? "?")")
      }
      for pair in permission["UserIdGroupPairs"] as? [[String: Any]] ?? [] {
        let source = pair["GroupId"] as? String ?? "?"
        rules.append("\(ports) from \(names[source] ?? source)")
      }
    }
    var tags: [String: String] = [:]
    for tag in group["Tags"] as? [[String: Any]] ?? [] {
      if let key = tag["Key"] as? String { tags[key] = tag["Value"] as? String }
    }
    return SecurityGroupState(
      id: group["GroupId"] as? String ?? "?", name: group["GroupName"] as? String ?? "?",
      tags: tags,
      rules: rules.sorted())
  }
}
