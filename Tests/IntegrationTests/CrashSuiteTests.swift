import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Configuration values carrying shell metacharacters: each must reach aws as one literal
/// argument, and nothing may run them (a shell would create `marker`).
struct HostileValues {
  /// (Short: descriptions hold 255 characters.)
  let marker = "/tmp/rbi-\(UUID().uuidString.prefix(6))"
  var commands: String {
    "; touch \(marker) $(touch \(marker)) `touch \(marker)` | touch \(marker) & touch \(marker)"
  }
  /// The ALB security group's description (a tag value: no control characters).
  var groupDescription: String { "Security group for UniSync ALB\(commands)" }
  /// The DB subnet group's description.
  var subnetGroupDescription: String { "Subnet group for UniSync RDS\(commands) > \(marker)" }
  /// A variable of the Lambda function's environment: newlines too.
  static let variable = "RUNBOOK_TEST_NOTE"
  var variableValue: String {
    "first line\(commands)\n$(touch \(marker))\n`touch \(marker)`\n'\"\\ end"
  }

  func apply(to config: inout [String: Any]) {
    var groups = config["securityGroups"] as! [String: Any]
    var alb = groups["alb"] as! [String: Any]
    alb["description"] = groupDescription
    groups["alb"] = alb
    config["securityGroups"] = groups
    var rds = config["rds"] as! [String: Any]
    rds["subnetGroupDescription"] = subnetGroupDescription
    config["rds"] = rds
    var lambda = config["lambda"] as! [String: Any]
    var environment = lambda["environment"] as? [String: Any] ?? [:]
    environment[Self.variable] = variableValue
    lambda["environment"] = environment
    config["lambda"] = lambda
  }
}

/// The whole-runbook crash suite (part of ``DayTwoTests``).
extension DayTwoTests {
  static let steps = ["network", "security", "rds", "secrets", "ecr", "ecs", "lambda", "sqs"]

  /// Write calls (aws writes and docker pushes) of an uninterrupted deployment of ``steps`` with
  /// the VPC adopted and the Lambda role existing: network 17 (DNS hostnames on), security 8,
  /// rds 2, secrets 6 (with the services' database passwords), ecr 8 or 12, ecs 34 (the task
  /// role, the names the services find each other by, and the database task: its log group,
  /// retention, task definition and run-task), lambda 2 (the role's create-role, refused as the
  /// role exists, and the function: nothing is attached to a role that existed), sqs 5.
  /// (The registry outlives the emulator: when an earlier test pushed the same images, the
  /// `latest` tags are there already and not pushed again.)
  static let deploymentWrites = 82

  static let natWait = WaitKill(
    name: "network/nat-gateway-available", pattern: "describe-nat-gateways --nat-gateway-ids")
  /// Right after `create-role` of the Lambda role, which existed before the deployment (the
  /// call fails with EntityAlreadyExists): the resumed run must not take the role for its own.
  static let existingRole = WaitKill(
    name: "lambda/role", pattern: "iam create-role --role-name \(lambdaRole) ")
  static let rdsWait = WaitKill(
    name: "rds/instance-available",
    pattern:
      #"describe-db-instances --db-instance-identifier \S+ --query DBInstances\[0\]\.\[DBInstanceStatus"#
  )

  /// The deployment, run as a chain: SIGKILL right after 12 sampled writes (every write with
  /// `RUNBOOK_CRASH_ALL=1`) and SIGINT right after 6 more, SIGKILL in the NAT gateway wait, in the
  /// DB instance wait and right after the Lambda role's `create-role` (which finds the role that
  /// existed), and 30 % of aws calls throttled (seeded) all along. In the end: the
  /// inventory of an uninterrupted run (one of everything, nothing else), every export, the
  /// retries in the log, the hostile configuration values passed literally, and a rerun that
  /// writes nothing.
  func checkInterruptedDeployment(
    _ workspace: Workspace, supplied: [String: String], hostile: HostileValues
  ) async throws {
    let points = sampledWrites(18, of: Self.deploymentWrites)
    let interrupt = Set(points.enumerated().filter { $0.offset % 3 == 1 }.map(\.element))
    var environment = supplied
    environment["RUNBOOK_FAULT_RATE"] = "0.3"
    environment["RUNBOOK_FAULT_SEED"] = "11"
    environment["RUNBOOK_FAULT_COUNTER"] = workspace.directory.appendingPathComponent("faults").path
    let arguments = ["run"] + Self.steps + ["--adopt", "--yes"]
    let started = Date()
    let chain = try await workspace.runInterrupted(
      arguments, at: points, interrupt: interrupt,
      waits: [Self.natWait, Self.rdsWait, Self.existingRole],
      environment: environment
    ) { interruption in
      let checkpoint = try workspace.checkpoint()
      switch interruption.point {
      case .wait(let wait) where wait == Self.existingRole.name:
        XCTAssertNil(checkpoint.record("lambda", "role")?.status, "\(interruption)")
      case .wait(let wait):
        // Killed after the create was recorded, before the wait was.
        let (step, action) =
          wait == Self.natWait.name ? ("network", "nat-gateway") : ("rds", "instance")
        XCTAssertEqual(checkpoint.record(step, action)?.status, .done, "\(interruption)")
        XCTAssertNotEqual(
          checkpoint.record(step, String(wait.split(separator: "/").last ?? ""))?.status, .done,
          "\(interruption)")
      case .write:
        if interruption.signal == SIGINT {
          XCTAssertEqual(interruption.run.status, 130, interruption.run.summary)
          XCTAssertTrue(
            (interruption.run.stdout + interruption.run.stderr).contains("interrupted"),
            interruption.run.summary)
        }
      }
    }
    let seconds = Date().timeIntervalSince(started)
    XCTAssertEqual(chain.finished?.status, 0, chain.finished?.summary ?? "no run finished")
    guard chain.finished?.status == 0 else {
      throw HarnessError.missing("the deployment did not finish")
    }
    XCTAssertEqual(
      chain.missed, [], "sampled writes never reached (the deployment made \(chain.writes))")
    XCTAssertEqual(chain.waitsMissed, [], "waits never reached")
    let kills = chain.interruptions.filter { $0.signal == SIGKILL }
    let interrupts = chain.interruptions.filter { $0.signal == SIGINT }
    // 12 sampled writes, the two waits and the existing role's create-role, which can be a
    // sampled write too (with RUNBOOK_CRASH_ALL=1: every write but the 6 of SIGINT).
    XCTAssertGreaterThanOrEqual(
      kills.count, crashAll ? Self.deploymentWrites - 6 : 14, "\(chain.interruptions)")
    // A SIGINT point that was also the call a wait kill matched was served by that SIGKILL.
    XCTAssertEqual(
      interrupts.count, interrupt.subtracting(chain.servedByWaits).count, "\(chain.interruptions)")
    XCTAssertGreaterThanOrEqual(interrupts.count, 5, "\(chain.interruptions)")
    report(
      "crash chain: \(chain.interruptions.count) interruptions (\(kills.count) SIGKILL, \(interrupts.count) SIGINT), "
        + "\(chain.interruptions.count + 1) runs, \(chain.writes) writes, \(Int(seconds)) s: "
        + chain.interruptions.map(\.description).joined(separator: ", "))

    // Throttled calls were retried: the shim says so, and so do the output and the audit log.
    let calls = loggedAWSCalls(workspace.environment["RUNBOOK_AWS_LOG"]!)
    let throttled = calls.filter { $0["fault"] as? Bool == true }.count
    XCTAssertGreaterThan(
      throttled, 20, "the shim should have throttled about 30 % of \(calls.count) calls")
    XCTAssertTrue(
      workspace.transcript.contains { $0.stdout.contains("retry") }, "no retry in the output")
    let audit = try FileManager.default.contentsOfDirectory(
      atPath: workspace.stateDirectory + "/logs"
    )
    .map { try String(contentsOfFile: workspace.stateDirectory + "/logs/" + $0, encoding: .utf8) }
    .joined()
    XCTAssertTrue(
      audit.contains("retry 1 after Throttling"), "the audit log should show the retries")
    report("throttled: \(throttled) of \(calls.count) aws calls")

    // One of everything, nothing else, and every export.
    let exports = try workspace.checkpoint().exports
    let tag = try XCTUnwrap(exports["IMAGE_TAG"])
    let password = try await emulatorRegistryPassword(workspace.endpoint)
    let inventory = try await wholeInventory(workspace, registryPassword: password)
    XCTAssertEqual(inventory, expectedWholeInventory(tag: tag))
    let expected = try expectedExports(workspace.configPath, steps: Self.steps)
    XCTAssertEqual(expected.subtracting(exports.keys), [], "missing exports")
    XCTAssertEqual(exports.filter { $0.value.isEmpty }.keys.sorted(), [], "empty exports")

    try await checkHostileValuesPassedLiterally(workspace, hostile, calls: calls)

    // A rerun has nothing to write.
    let rerunLog = workspace.directory.appendingPathComponent("rerun-aws.log").path
    let rerunDocker = workspace.directory.appendingPathComponent("rerun-docker.log").path
    let rerun = try await workspace.run(
      arguments,
      environment: supplied.merging([
        "RUNBOOK_AWS_LOG": rerunLog, "RUNBOOK_DOCKER_LOG": rerunDocker,
      ]) { $1 })
    XCTAssertEqual(rerun.status, 0, rerun.summary)
    XCTAssertEqual(
      loggedAWSCalls(rerunLog).filter { $0["write"] as? Bool == true }.count, 0, "a rerun wrote")
    XCTAssertEqual(
      loggedAWSCalls(rerunDocker).filter { $0["write"] as? Bool == true }.count, 0, "a rerun pushed"
    )
  }

  /// No shell ran the values; each reached aws as one argument and AWS keeps it unchanged.
  func checkHostileValuesPassedLiterally(
    _ workspace: Workspace, _ hostile: HostileValues, calls: [[String: Any]]
  )
    async throws
  {
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: hostile.marker), "a shell ran a configuration value")
    let arguments = calls.flatMap { $0["argv"] as? [String] ?? [] }
    XCTAssertTrue(
      arguments.contains(hostile.groupDescription), "the group description as one argument")
    XCTAssertTrue(
      arguments.contains(hostile.subnetGroupDescription),
      "the subnet group description as one argument")
    let groups = try await workspace.aws([
      "ec2", "describe-security-groups", "--filters",
      #"[{"Name":"group-name","Values":["unisync-alb-sg"]}]"#,
    ])
    XCTAssertEqual(
      ((groups as? [String: Any])?["SecurityGroups"] as? [[String: Any]])?.first?["Description"]
        as? String,
      hostile.groupDescription)
    let subnetGroups = try await workspace.aws(["rds", "describe-db-subnet-groups"])
    XCTAssertEqual(
      ((subnetGroups as? [String: Any])?["DBSubnetGroups"] as? [[String: Any]])?.first?[
        "DBSubnetGroupDescription"]
        as? String, hostile.subnetGroupDescription)
    let function = try await workspace.aws([
      "lambda", "get-function-configuration", "--function-name", "canvas-sync-lambda",
    ])
    let variables =
      (((function as? [String: Any])?["Environment"] as? [String: Any])?["Variables"]
        as? [String: String]) ?? [:]
    XCTAssertEqual(variables[HostileValues.variable], hostile.variableValue)
  }
}
