import Foundation
import RunbookState
import XCTest

/// Sets the VPC's CIDR in the workspace's configuration file.
func setVPCCidr(_ workspace: Workspace, _ cidr: String) throws {
  let url = URL(fileURLWithPath: workspace.configPath)
  var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
  var network = config["network"] as! [String: Any]
  var vpc = network["vpc"] as! [String: Any]
  vpc["cidr"] = cidr
  network["vpc"] = vpc
  config["network"] = network
  try JSONSerialization.data(withJSONObject: config).write(to: url)
}

/// `run` and `plan` notice a done action that today's configuration would make with another
/// command (the VPC's CIDR changed in the file after `run network`) instead of saying "nothing
/// to do", and say how to converge.
final class ConfigurationDriftTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  func testAChangedVPCCidrIsReportedByRunAndPlanAndRevertingItIsNothingToDo() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    XCTAssertFalse(first.stdout.contains("another configuration"), first.stdout)
    // Each write keeps the command it stands for: exports as placeholders, no global options.
    let recorded = try workspace.checkpoint().actions
    let vpc = try XCTUnwrap(recorded["network/vpc"]?.command)
    XCTAssertTrue(vpc.hasPrefix("aws ec2 create-vpc --cidr-block 10.0.0.0/16 "), vpc)
    XCTAssertFalse(vpc.contains("--endpoint-url"), vpc)
    let subnet = try XCTUnwrap(recorded["network/subnet-public-2a"]?.command)
    XCTAssertTrue(subnet.contains("--vpc-id <VPC_ID>"), subnet)
    XCTAssertNil(recorded["network/nat-gateway-available"]?.command, "a wait is no write")

    try setVPCCidr(workspace, "10.0.0.0/17")
    let plan = try await workspace.run(["plan", "network"])
    XCTAssertEqual(plan.status, 0, plan.summary)
    for line in [
      "! vpc: create VPC unisync-vpc 10.0.0.0/17 -> VPC_ID (done with another configuration)",
      "      recorded: … --cidr-block 10.0.0.0/16 …",
      "      today:    … --cidr-block 10.0.0.0/17 …",
      "1 done action(s) were done with another configuration than today's (marked above)",
      "'runbook destroy network'",
    ] {
      XCTAssertTrue(plan.stdout.contains(line), "'\(line)' missing:\n\(plan.stdout)")
    }
    XCTAssertEqual(
      plan.stdout.components(separatedBy: "(done with another configuration)").count - 1, 1,
      "only the VPC differs:\n\(plan.stdout)")

    let run = try await workspace.runLogged(["run", "network", "--yes"])
    XCTAssertEqual(run.run.status, 0, run.run.summary)
    XCTAssertEqual(run.calls.count, 0, "nothing is run again: \(run.calls)")
    XCTAssertFalse(run.run.stdout.contains("nothing to do"), run.run.stdout)
    for line in [
      "every action of network is done, but 1 of them were done with another configuration than today's:",
      "  network/vpc\n    recorded: … --cidr-block 10.0.0.0/16 …\n    today:    … --cidr-block 10.0.0.0/17 …",
      "To converge: revert the change in the configuration file",
    ] {
      XCTAssertTrue(run.run.stdout.contains(line), "'\(line)' missing:\n\(run.run.stdout)")
    }

    try setVPCCidr(workspace, "10.0.0.0/16")
    let reverted = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(reverted.status, 0, reverted.summary)
    XCTAssertTrue(
      reverted.stdout.contains("nothing to do: every action of network is done"), reverted.stdout)
    let replan = try await workspace.run(["plan", "network"])
    XCTAssertFalse(replan.stdout.contains("another configuration"), replan.stdout)
  }
}

/// `runbook drift`: reads back what the network step made and compares it with today's
/// configuration, changing nothing; exit 4 when something drifted.
final class DriftCommandTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  func testASubnetDeletedByHandAndAChangedCidrAreFoundAndNothingIsWritten() async throws {
    let workspace = try Workspace()
    let first = try await workspace.run(["run", "network", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let clean = try await workspace.runLogged(["drift", "network"])
    XCTAssertEqual(clean.run.status, 0, clean.run.summary)
    XCTAssertTrue(clean.run.stdout.contains("no drift"), clean.run.stdout)
    XCTAssertEqual(clean.calls.filter { $0["write"] as? Bool == true }.count, 0)
    XCTAssertEqual(
      clean.calls.count, 14,
      "one read each: the VPC, four subnets, two route tables, their default routes and four associations; and the resources tagged with the deployment"
    )

    // Behind the tool's back: a subnet deleted; in the file: another CIDR for the VPC.
    let subnet = try XCTUnwrap(try workspace.checkpoint().exports["SUBNET_PRIVATE_2C"])
    _ = try await workspace.aws(["ec2", "delete-subnet", "--subnet-id", subnet])
    try setVPCCidr(workspace, "10.0.0.0/17")
    let before = workspace.stateSnapshot()
    let found = try await workspace.runLogged(["drift", "network", "--json"])
    XCTAssertEqual(found.run.status, 4, found.run.summary)
    XCTAssertEqual(found.calls.filter { $0["write"] as? Bool == true }.count, 0)
    XCTAssertEqual(workspace.stateSnapshot(), before, "drift writes nothing")
    let document = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(found.run.stdout.utf8)) as? [String: Any])
    let findings = try XCTUnwrap(document["findings"] as? [[String: Any]])
    XCTAssertEqual(findings.count, 2, "\(findings)")
    let vpc = try XCTUnwrap(findings.first { $0["action"] as? String == "vpc" })
    XCTAssertEqual(vpc["kind"] as? String, "changed")
    XCTAssertEqual(vpc["expected"] as? String, "10.0.0.0/17")
    XCTAssertEqual(vpc["actual"] as? String, "10.0.0.0/16")
    let gone = try XCTUnwrap(findings.first { $0["action"] as? String == "subnet-private-2c" })
    XCTAssertEqual(gone["kind"] as? String, "missing")
    XCTAssertEqual(gone["resource"] as? String, subnet)
    XCTAssertEqual(gone["expected"] as? String, "10.0.12.0/24 ap-northeast-2c")

    let text = try await workspace.run(["drift", "network"])
    XCTAssertEqual(text.status, 4, text.summary)
    XCTAssertTrue(
      text.stdout.contains(
        "network/vpc \(try workspace.checkpoint().exports["VPC_ID"] ?? "?")  changed: cidr is 10.0.0.0/16, today's configuration says 10.0.0.0/17"
      ), text.stdout)
    XCTAssertTrue(
      text.stdout.contains(
        "network/subnet-private-2c \(subnet)  missing (today's configuration expects cidr and zone 10.0.12.0/24 ap-northeast-2c)"
      ), text.stdout)
  }
}
