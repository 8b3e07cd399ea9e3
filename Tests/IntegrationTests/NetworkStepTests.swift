import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 2.1 against the real aws CLI and the local emulator.
final class NetworkStepTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// One uninterrupted run, looked at from every side: the resources, the calls, the output an
  /// operator reads in CI, `status --json`, `env`, and a rerun that makes no call at all. The VPC's
  /// name carries shell metacharacters, which must reach aws as one literal argument.
  func testRunCreatesOneOfEachAndRerunMakesNoCall() async throws {
    let marker = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-injected-\(UUID().uuidString)"
    ).path
    let hostileName = "unisync; touch \(marker) $(touch \(marker)) `touch \(marker)`"
    let workspace = try Workspace { config in
      var network = config["network"] as! [String: Any]
      var vpc = network["vpc"] as! [String: Any]
      vpc["name"] = hostileName
      network["vpc"] = vpc
      config["network"] = network
    }
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let first = try await workspace.run(
      ["run", "network", "--yes"], environment: ["RUNBOOK_AWS_LOG": log, "NO_COLOR": ""])
    XCTAssertEqual(first.status, 0, first.summary)
    var expected = expectedNetworkInventory
    expected["vpc"] = [hostileName]
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expected)
    XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "a shell ran")

    let checkpoint = try workspace.checkpoint()
    for export in [
      "VPC_ID", "IGW_ID", "EIP_ID", "NAT_ID", "PUBLIC_RT_ID", "PRIVATE_RT_ID",
      "SUBNET_PUBLIC_2A", "SUBNET_PUBLIC_2C", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C",
    ] {
      XCTAssertNotNil(checkpoint.exports[export], "missing export \(export)")
    }
    XCTAssertEqual(checkpoint.account, "123456789012")
    let calls = loggedAWSCalls(log)
    XCTAssertTrue(calls.allSatisfy { ($0["argv"] as? [String] ?? []).contains("--endpoint-url") })
    // 17 creates, and DNS hostnames turned on (DNS support is on in a new VPC: not written).
    // (Writes AWS accepted: under the strict layer a write naming the new VPC may first be
    // refused as not found yet, and retried.)
    XCTAssertEqual(
      calls.filter { $0["write"] as? Bool == true && $0["exit"] as? Int == 0 }.count, 18,
      "one write per action")
    try await assertVPCDNSIsOn(workspace)
    XCTAssertTrue(
      calls.contains {
        ($0["argv"] as? [String] ?? []).contains {
          $0.contains(hostileName.replacingOccurrences(of: "`", with: "`"))
        }
      })

    // Output for a log, not a terminal: plain lines, no spinner frames, no escape codes.
    XCTAssertFalse(first.stdout.contains("\u{1B}"), first.stdout.debugDescription)
    XCTAssertFalse(first.stdout.contains("\r"), first.stdout.debugDescription)
    XCTAssertTrue(first.stdout.contains("2.1 VPC and network (network)"))
    XCTAssertTrue(first.stdout.contains(" waiting network/nat-gateway-available: available"))
    XCTAssertTrue(first.stdout.contains("created          network/vpc  VPC_ID=vpc-"))
    XCTAssertTrue(first.stdout.contains("finished in "))

    // status --json validates against the schema in the docs; env reproduces every export in bash.
    let status = try await workspace.run(["status", "--json"])
    XCTAssertEqual(status.status, 0, status.summary)
    let document = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8))
    let schema = try JSONSerialization.jsonObject(
      with: Data(contentsOf: repositoryRoot.appendingPathComponent("docs/status-schema.json")))
    XCTAssertEqual(validate(document, against: schema as! [String: Any], at: "$"), [])
    XCTAssertEqual(
      (document as? [String: Any])?["exports"] as? [String: String], checkpoint.exports)
    let env = try await workspace.run(["env"])
    let script =
      env.stdout + "\n"
      + checkpoint.exports.keys.sorted().map { "printf '%s=%s\\n' \($0) \"$\($0)\"" }.joined(
        separator: "\n")
    let evaluated = try await ProcessRunner().run(
      Invocation(executable: "bash", arguments: ["-c", script]))
    XCTAssertEqual(
      evaluated.stdoutText,
      checkpoint.exports.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
        separator: "\n") + "\n")

    try await assertRerunCallsNothing(workspace, step: "network")
    let afterRerun = try await networkInventory(workspace)
    XCTAssertEqual(afterRerun, expected)
  }

  func testPlanOnEmptyCheckpointPrintsEveryCommandAndStartsNothing() async throws {
    let workspace = try Workspace()
    let log = workspace.directory.appendingPathComponent("aws.log").path
    let plan = try await workspace.run(["plan", "network"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(plan.status, 0, plan.summary)
    XCTAssertEqual(loggedAWSCalls(log).count, 0)
    XCTAssertNil(workspace.stateBytes)
    for operation in [
      "create-vpc", "create-subnet", "create-internet-gateway", "attach-internet-gateway",
      "allocate-address", "create-nat-gateway", "describe-nat-gateways", "create-route-table",
      "create-route", "associate-route-table",
    ] {
      XCTAssertTrue(plan.stdout.contains("aws ec2 \(operation) "), "plan lacks \(operation)")
    }
    XCTAssertEqual(plan.stdout.components(separatedBy: "aws ec2 create-subnet ").count - 1, 4)
    XCTAssertTrue(plan.stdout.contains("--vpc-id <VPC_ID>"))
    XCTAssertTrue(plan.stdout.contains("--endpoint-url \(workspace.endpoint)"))
    let dryRun = try await workspace.run(
      ["run", "network", "--dry-run"], environment: ["RUNBOOK_AWS_LOG": log])
    XCTAssertEqual(dryRun.stdout, plan.stdout)
    XCTAssertEqual(loggedAWSCalls(log).count, 0)
  }

  /// Kills the tool right after a write call returned (before it could record anything), one
  /// write per run, until a run finishes: 4 of the step's 18 writes, spread over it (every one
  /// with `make crash-all`).
  func testKilledAfterEveryWriteResumesToExactlyOneOfEach() async throws {
    let workspace = try Workspace()
    try await assertResumesAfterEveryKill(workspace, step: "network", writes: 18, sampled: 4)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
    try await assertVPCDNSIsOn(workspace)
    try await assertExportsPointAtInventory(workspace)
    let outcomes = try workspace.checkpoint().actions.values.compactMap(\.outcome)
    XCTAssertTrue(
      outcomes.contains(.recovered), "resumed runs should have found the earlier writes")
  }

  /// The private DNS namespace answers only in a VPC with DNS support and hostnames on.
  func assertVPCDNSIsOn(_ workspace: Workspace, file: StaticString = #filePath, line: UInt = #line)
    async throws
  {
    let vpc = try XCTUnwrap(try workspace.checkpoint().exports["VPC_ID"], file: file, line: line)
    for (attribute, key) in [
      ("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames"),
    ] {
      let answer = try await workspace.aws([
        "ec2", "describe-vpc-attribute", "--vpc-id", vpc, "--attribute", attribute,
      ])
      XCTAssertEqual(
        ((answer as? [String: Any])?[key] as? [String: Any])?["Value"] as? Bool, true, attribute,
        file: file, line: line)
    }
  }

  /// One kill in the middle of a run with independent actions in flight at once.
  /// Killed while two steps run at once (the queues need nothing of the network, so sqs runs
  /// beside it), right after sqs's second `create-queue`: the network's actions head longer
  /// chains of waits and take the free `--jobs` slots first, so the network has written by then
  /// (a kill at a fixed write count could come before sqs had a slot). The next run ends with one
  /// of each, in both steps.
  func testKilledWhileActionsRunConcurrentlyResumes() async throws {
    let workspace = try Workspace()
    let counter = workspace.directory.appendingPathComponent("crash-counter").path
    // Every process of the killed run carries this, so the test can wait for the last of them.
    let marker = "RUNBOOK_TEST_KILLED_RUN=\(UUID().uuidString)"
    let killed = try await workspace.run(
      ["run", "network", "sqs", "--yes", "--jobs", "4"],
      environment: [
        "RUNBOOK_KILL_MATCH": "^sqs create-queue ", "RUNBOOK_KILL_MATCH_AT": "2",
        "RUNBOOK_KILL_MATCH_COUNTER": counter,
        "RUNBOOK_TEST_KILLED_RUN": String(marker.split(separator: "=")[1]),
      ])
    XCTAssertTrue(killed.signaled, killed.summary)
    let journal = try String(
      contentsOfFile: workspace.stateDirectory + "/journal.jsonl", encoding: .utf8)
    XCTAssertTrue(
      journal.contains(#""action":"network/"#) && journal.contains(#""action":"sqs/"#),
      "both steps should have started before the kill:\n\(journal)")
    // Children started before the kill may still be finishing their calls: wait until they have.
    try await waitUntilNoProcess(withEnvironment: marker)
    let resumed = try await workspace.run(["run", "network", "sqs", "--yes"])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    // Their lines interleaved: the closing lines tally each step apart.
    let closing = resumed.stdout.components(separatedBy: "finished in ").last ?? ""
    for step in ["network", "sqs"] {
      let tally = #"\n  "# + step + #": +[0-9]+ "#
      XCTAssertNotNil(closing.range(of: tally, options: .regularExpression), closing)
    }
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
    try await assertExportsPointAtInventory(workspace)
    let queues = try await sqsInventory(workspace)
    XCTAssertEqual(queues.map(\.name), SQSStepTests.expectedQueues)
  }

  func testNoEndpointMeansTheShimRefusesAndTheStepFails() async throws {
    let workspace = try Workspace()
    let run = try await workspace.runRaw(
      [
        "--config", workspace.configPath, "--state-dir", workspace.stateDirectory, "run", "network",
        "--yes",
      ],
      environment: ["AWS_ENDPOINT_URL": ""])
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertTrue(run.stderr.contains("refusing"), run.stderr)
  }

  func assertExportsPointAtInventory(
    _ workspace: Workspace, file: StaticString = #filePath, line: UInt = #line
  ) async throws {
    let exports = try workspace.checkpoint().exports
    func ids(_ arguments: [String], _ key: String, _ field: String) async throws -> Set<String> {
      let result = try await workspace.aws(arguments)
      return Set(
        ((result as? [String: Any])?[key] as? [[String: Any]] ?? []).compactMap {
          $0[field] as? String
        })
    }
    let vpcs = try await ids(["ec2", "describe-vpcs"], "Vpcs", "VpcId")
    XCTAssertTrue(vpcs.contains(exports["VPC_ID"] ?? "-"), file: file, line: line)
    let subnets = try await ids(["ec2", "describe-subnets"], "Subnets", "SubnetId")
    for key in ["SUBNET_PUBLIC_2A", "SUBNET_PUBLIC_2C", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C"] {
      XCTAssertTrue(subnets.contains(exports[key] ?? "-"), key, file: file, line: line)
    }
    let gateways = try await ids(
      ["ec2", "describe-internet-gateways"], "InternetGateways", "InternetGatewayId")
    XCTAssertTrue(gateways.contains(exports["IGW_ID"] ?? "-"), file: file, line: line)
    let addresses = try await ids(["ec2", "describe-addresses"], "Addresses", "AllocationId")
    XCTAssertTrue(addresses.contains(exports["EIP_ID"] ?? "-"), file: file, line: line)
    let nats = try await ids(["ec2", "describe-nat-gateways"], "NatGateways", "NatGatewayId")
    XCTAssertTrue(nats.contains(exports["NAT_ID"] ?? "-"), file: file, line: line)
    let tables = try await ids(["ec2", "describe-route-tables"], "RouteTables", "RouteTableId")
    XCTAssertTrue(tables.contains(exports["PUBLIC_RT_ID"] ?? "-"), file: file, line: line)
    XCTAssertTrue(tables.contains(exports["PRIVATE_RT_ID"] ?? "-"), file: file, line: line)
  }

  /// A VPC made by hand a moment before `run network --adopt`: the run finds it by its name and
  /// CIDR, and EC2 does not see it yet for the next call that names it (eventual consistency,
  /// the strict layer's clock frozen so the moment lasts). The tool read it a moment ago, so the
  /// "not found" is retried, as for an id the run made, and the run adopts it once EC2 sees it.
  func testAVPCMadeByHandAMomentBeforeAnAdoptRunIsRetriedUntilEC2SeesIt() async throws {
    let strict = try StrictLayer.forThisProcess()
    try strict.reset()
    try strict.configure(["ec2-consistency"], frozen: true)
    defer { try? strict.reset() }
    let workspace = try Workspace(strict: true)
    let handMade = try strict.ec2(
      "CreateVpc",
      [
        "CidrBlock": "10.0.0.0/16", "TagSpecification.1.ResourceType": "vpc",
        "TagSpecification.1.Tag.1.Key": "Name", "TagSpecification.1.Tag.1.Value": "unisync-vpc",
      ], "vpcId")
    let log = workspace.directory.appendingPathComponent("aws-calls.log").path
    let tool = try RunningTool(
      workspace, ["run", "network", "--adopt", "--yes"], endpoint: strict.url,
      environment: ["RUNBOOK_AWS_LOG": log])
    // The same call naming the VPC made twice: the tool retried it while EC2 did not see the VPC.
    func retried() -> Bool {
      let naming = loggedAWSCalls(log).compactMap { $0["argv"] as? [String] }.filter {
        $0.contains(handMade)
      }
      return Set(naming).count < naming.count
    }
    let deadline = Date().addingTimeInterval(120)
    while !retried(), tool.process.isRunning, Date() < deadline {
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    XCTAssertTrue(tool.process.isRunning, "the run ended while EC2 did not see the VPC")
    XCTAssertTrue(retried(), "no call naming the VPC was made again")
    // EC2 sees it now; what the run makes next is new for its usual moment (a second or so).
    try strict.advance(600)
    try strict.configure(["ec2-consistency"], frozen: false)
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 0, text)
    XCTAssertTrue(
      text.contains("VPC_ID made or found a moment ago, not visible everywhere yet"), text)
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.exports["VPC_ID"], handMade)
    XCTAssertEqual(checkpoint.record("network", "vpc")?.outcome, .adopted)
  }

  /// Ctrl-C in the middle of a run: the running aws child is stopped, the checkpoint is kept, the
  /// exit status is 130, and the next run finishes with exactly one of each resource.
  func testInterruptStopsWithStatus130AndResumes() async throws {
    let workspace = try Workspace()
    let tool = try RunningTool(workspace, ["run", "network", "--yes"])
    // Let it get past its first writes, then press Ctrl-C.
    try await tool.waitForRecordedActions(2, in: workspace, seconds: 60)
    tool.process.interrupt()
    let (status, text) = try await tool.finish()
    XCTAssertEqual(status, 130, text)
    XCTAssertTrue(text.contains("interrupted"), text)
    let kept = try workspace.checkpoint()
    XCTAssertGreaterThanOrEqual(kept.actions.count, 2, "finished actions must be kept")
    XCTAssertLessThan(kept.actions.count, 18, "the interrupt came too late to test anything")
    let resumed = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(resumed.status, 0, resumed.summary)
    let inventory = try await networkInventory(workspace)
    XCTAssertEqual(inventory, expectedNetworkInventory)
  }
}
